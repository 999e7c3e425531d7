//! How long a device with default TCP settings waits for `help_coming` on the embedded
//! broker: from writing its press to reading the command, the device's own clock.
//!
//! ```text
//! cargo run --release -p anxind --example help_coming -- --presses 200 --runs 5 \
//!     --record docs/plots/help-coming-embedded.jsonl
//! ```
//!
//! One anxind (embedded broker, SQLite in a temporary directory) and two devices of one elder,
//! each a plain TCP socket with nothing set (Nagle on, Linux's delayed ACK as it comes),
//! speaking MQTT 3.1.1 with rumqttc's codec, as firmware would. `before` connects straight to
//! rumqttd's port, as every device did before the guard stood in front of it (with the
//! internal login, which is all rumqttd now takes); `after` connects where devices connect
//! now, the guard on `mqtt.embedded_listen`. They press in turn, one press at a time, each
//! answered before the next, with a pause of 20 to 120 ms between (a device stays
//! connected; the pause lets each socket settle into its steady state, as a real device's
//! does between presses). Every press joins the elder's open incident, which sends
//! `help_coming` again. The engine, the broker and the devices share this process and the
//! machine's cores.

use anxin_core::{Coordinates, Device, DeviceId, Elder, ElderId, Registry, Station, StationId};
use anxin_mqtt::rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode, Login, Packet, PubAck, Publish, Subscribe};
use anxin_mqtt::rumqttc::mqttbytes::{Error, QoS};
use anxind::{App, Config};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const USAGE: &str = "\
usage: help_coming [--presses 200] [--runs 5] [--record FILE.jsonl] [--label NAME]

  --presses  presses per device per run (default 200)
  --runs     runs, each a fresh anxind (default 5)
  --record   append one JSON line per run and device to FILE
  --label    a prefix for the record's labels (default none)
";

const MAX: usize = 1 << 20;
const ROOT: &str = "hc";

fn registry() -> Registry {
    let home = Coordinates::new(25.03, 102.68).unwrap();
    let mut r = Registry::default();
    r.elders.push(Elder {
        id: ElderId::parse("hc-e").unwrap(),
        name: "elder".into(),
        address: "address".into(),
        home,
        phone: None,
        notes: String::new(),
        profile: Default::default(),
    });
    for d in ["hc-before", "hc-after"] {
        r.devices.push(Device {
            id: DeviceId::parse(d).unwrap(),
            elder_id: ElderId::parse("hc-e").unwrap(),
            model: None,
            sim: None,
        });
    }
    r.stations.push(Station {
        id: StationId::parse("hc-s").unwrap(),
        name: "station".into(),
        position: home,
        phone: None,
        service_circle_min: None,
        zone: Default::default(),
    });
    r
}

/// A device (a pendant): its socket as the kernel made it, and what it has read but not yet parsed.
struct Pendant {
    id: &'static str,
    socket: TcpStream,
    buf: bytes::BytesMut,
    next_pkid: u16,
}

impl Pendant {
    async fn connect(id: &'static str, addr: std::net::SocketAddr, login: Option<(String, String)>) -> Self {
        let socket = TcpStream::connect(addr).await.expect("the broker takes the device");
        let mut d = Self { id, socket, buf: bytes::BytesMut::with_capacity(4096), next_pkid: 1 };
        let mut connect = Connect::new(id);
        connect.keep_alive = 60;
        connect.login = login.map(|(username, password)| Login { username, password });
        d.send(Packet::Connect(connect)).await;
        assert!(matches!(d.next().await, Packet::ConnAck(a) if a.code == ConnectReturnCode::Success), "{id} is let in");
        let commands = format!("{ROOT}/v1/devices/{id}/commands");
        d.send(Packet::Subscribe(Subscribe::new(commands, QoS::AtLeastOnce))).await;
        while !matches!(d.next().await, Packet::SubAck(_)) {}
        d
    }

    async fn send(&mut self, packet: Packet) {
        let mut out = bytes::BytesMut::new();
        packet.write(&mut out, MAX).unwrap();
        self.socket.write_all(&out).await.unwrap();
    }

    async fn next(&mut self) -> Packet {
        loop {
            match Packet::read(&mut self.buf, MAX) {
                Ok(p) => return p,
                Err(Error::InsufficientBytes(_)) => {
                    assert!(self.socket.read_buf(&mut self.buf).await.unwrap() > 0, "{}: the broker closed", self.id);
                }
                Err(e) => panic!("{}: {e}", self.id),
            }
        }
    }

    /// Presses, and returns how long until `help_coming` was read (and acknowledged).
    async fn press(&mut self, n: usize) -> Duration {
        let body = format!(r#"{{"msg_id":"{}-{n}","type":"sos"}}"#, self.id);
        let mut publish = Publish::new(format!("{ROOT}/v1/devices/{}/events", self.id), QoS::AtLeastOnce, body);
        publish.pkid = self.next_pkid;
        self.next_pkid = self.next_pkid % 60_000 + 1;
        let start = Instant::now();
        self.send(Packet::Publish(publish)).await;
        loop {
            if let Packet::Publish(p) = self.next().await {
                let waited = start.elapsed();
                assert!(p.payload.starts_with(br#"{"type":"help_coming""#), "{:?}", p.payload);
                if p.qos != QoS::AtMostOnce {
                    self.send(Packet::PubAck(PubAck::new(p.pkid))).await;
                }
                return waited;
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let (mut presses, mut runs, mut record, mut label) = (200usize, 5usize, None, String::new());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--presses" => presses = value().parse().expect(USAGE),
            "--runs" => runs = value().parse().expect(USAGE),
            "--record" => record = Some(value()),
            "--label" => label = format!("{} ", value()),
            _ => panic!("unknown flag {flag}\n{USAGE}"),
        }
    }
    let mut rng = SmallRng::seed_from_u64(17);
    let mut summary: Vec<(&str, Vec<f64>)> = vec![("before", vec![]), ("after", vec![])];
    for run in 1..=runs {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.mqtt.embedded_listen = "127.0.0.1:0".parse().unwrap();
        config.mqtt.topic_root = ROOT.into();
        config.store.url = anxind::config::Secret::new(format!("sqlite://{}", dir.path().join("hc.db").display()));
        // Every press counts (joins), as a device pressing again would after the interval.
        config.dispatch.repeat_press_interval_ms = 0;
        let app = App::build(config, Some(registry())).await.expect("anxind builds");
        let broker = app.embedded_broker().expect("the embedded broker");
        let (guard, rumqttd, login) = (broker.addr(), broker.engine_addr(), broker.engine_login().clone());
        let stop = CancellationToken::new();
        let task = tokio::spawn(app.run(stop.clone()));
        let mut devices = [
            Pendant::connect("hc-before", rumqttd, Some(login)).await,
            Pendant::connect("hc-after", guard, None).await,
        ];
        // A press to open the incident and warm both paths, not counted.
        for d in devices.iter_mut() {
            d.press(0).await;
        }
        let mut waits = [vec![], vec![]];
        for n in 1..=presses {
            for (i, d) in devices.iter_mut().enumerate() {
                tokio::time::sleep(Duration::from_millis(rng.random_range(20..120))).await;
                waits[i].push(d.press(n).await.as_secs_f64() * 1000.0);
            }
        }
        for (i, w) in waits.iter_mut().enumerate() {
            w.sort_by(f64::total_cmp);
            let (p50, p90, p99, max) = (percentile(w, 0.5), percentile(w, 0.9), percentile(w, 0.99), w[w.len() - 1]);
            let path = summary[i].0;
            println!(
                "run {run} {path:>6}: {} presses, p50 {p50:.2} ms, p90 {p90:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
                w.len()
            );
            summary[i].1.push(p50);
            if let Some(file) = &record {
                let line = serde_json::json!({
                    "label": format!("{label}{path} run {run}"), "presses": w.len(),
                    "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max,
                });
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file).unwrap();
                writeln!(f, "{line}").unwrap();
            }
        }
        stop.cancel();
        task.await.unwrap().unwrap();
    }
    for (path, mut p50s) in summary {
        p50s.sort_by(f64::total_cmp);
        println!(
            "{path:>6}: p50 over {runs} runs {:.2}–{:.2} ms (median {:.2})",
            p50s[0],
            p50s[p50s.len() - 1],
            percentile(&p50s, 0.5)
        );
    }
}
