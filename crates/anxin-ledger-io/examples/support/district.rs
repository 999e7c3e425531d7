//! A district's ledger for the import benchmarks, the same every run: generated with a fixed
//! seed and written as the files an office would send; and what the benchmarks say of the
//! machine. Shared by `import_bench` (read and check) and anxind's `import_apply` (the whole
//! import through the API), each including it with `#[path]`; under `examples/support/`,
//! cargo builds it as no example of its own.

use anxin_core::geo::Coordinates;
use anxin_core::ids::{DeviceId, ElderId, StationId};
use anxin_core::registry::{Contact, Device, Elder, ElderProfile, Registry, Station};
use anxin_ledger_io::{check_character, export, Encoding, Format, Kind};
use std::path::Path;
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

/// `elders` elders around Kunming enrolled with 20 stations (`st-00` to `st-19`), and `devices`
/// devices, one for every fifth elder in turn.
pub fn district(elders: usize, devices: usize) -> Registry {
    let mut draw = Draw(20_261_203);
    let stations: Vec<Station> = (0..20)
        .map(|i| Station {
            id: StationId::parse(format!("st-{i:02}")).unwrap(),
            name: format!("{}第{}社区养老服务站", DISTRICTS[i % DISTRICTS.len()], i + 1),
            position: Coordinates::new(24.95 + draw.unit() * 0.2, 102.62 + draw.unit() * 0.22).unwrap(),
            phone: Some(format!("0871-65{:06}", i)),
            service_circle_min: Some(15),
            zone: Default::default(),
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
                    schedule: Default::default(),
                    need_level: None,
                },
            }
        })
        .collect::<Vec<_>>();
    let devices = (0..devices)
        .map(|i| Device {
            id: DeviceId::parse(format!("xs-{i:06}")).unwrap(),
            elder_id: elders[(i * 5) % elders.len()].id.clone(),
            model: None,
            sim: None,
        })
        .collect();
    Registry { elders, devices, stations, ..Registry::default() }
}

/// The name of `kind`'s file in `format`: `elders.xlsx`, `elders-gbk.csv`, ...
pub fn file_name(kind: Kind, format: Format) -> String {
    match format {
        Format::Xlsx => format!("{kind}.xlsx"),
        Format::Csv => format!("{kind}-gbk.csv"),
    }
}

/// Writes `ledger`'s elders and devices into `dir` as XLSX and as GBK CSV, the four files
/// [`file_name`] names, saying each one's size and export time.
pub fn write_files(ledger: &Registry, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for format in [Format::Xlsx, Format::Csv] {
        for kind in [Kind::Elders, Kind::Devices] {
            let t = Instant::now();
            let bytes = export(ledger, kind, format, Encoding::Gbk).unwrap();
            let took = t.elapsed().as_secs_f64();
            let name = file_name(kind, format);
            std::fs::write(dir.join(&name), &bytes).unwrap();
            println!("  export {name:<18} {:>7.1} MiB in {took:.2} s", bytes.len() as f64 / (1 << 20) as f64);
        }
    }
}

/// The machine: CPU model and cores, as the benchmarks' first line says it.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// The load average over 1, 5 and 15 minutes.
pub fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Peak resident memory so far of process `pid` (`"self"` for this one), in MiB: its VmHWM.
pub fn peak_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
