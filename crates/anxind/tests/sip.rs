//! Real SIP end to end: Kamailio and rtpengine from `deploy/sip/` (started with its
//! `start-local`), SIPp dialling the hotline as an elder's phone and SIPp answering as a
//! dispatcher's console, and a running anxind that Kamailio tells of each call. The call must
//! ring the console as a `call` incident on the elder's device, be answered (the SIP dialog
//! completes, RTP flows through rtpengine) by the dispatcher who then holds it, and be stored
//! on the timeline with its end and talk time.
//!
//! Without Kamailio, rtpengine and SIPp the test is skipped, except under `CI=true`, where
//! `.ci/run` installs them (`deploy/sip/start-local --install`) and a missing one fails.
//! Kamailio's and rtpengine's control and media ports are fixed by `deploy/sip/`, so one
//! such test runs at a time: this file has one.

#[macro_use]
#[allow(unused_macros)]
mod story;

use anxin_core::{Actor, CallEnd, Change, IncidentKind};
use anxind::config::Secret;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use story::*;

const SIP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/sip");
const TOKEN: &str = "sip-suite-telephony-token";

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
}

/// A UDP port nobody holds on loopback now.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kamailio and rtpengine, stopped when dropped.
struct SipServer {
    run_dir: PathBuf,
}

impl SipServer {
    fn start(run_dir: &Path, anxind: &str, sip_port: u16, dispatch_port: u16) -> Self {
        let status = Command::new(Path::new(SIP).join("start-local"))
            .arg(run_dir)
            .env("ANXIN_URL", anxind)
            .env("ANXIN_TELEPHONY_TOKEN", TOKEN)
            .env("SIP_PORT", sip_port.to_string())
            .env("DISPATCH_URI", format!("sip:dispatch@127.0.0.1:{dispatch_port}"))
            .status()
            .expect("start-local runs");
        let server = Self { run_dir: run_dir.to_path_buf() };
        assert!(status.success(), "start-local failed; logs in {}", run_dir.display());
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.run_dir.join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for SipServer {
    fn drop(&mut self) {
        let _ = Command::new(Path::new(SIP).join("stop-local")).arg(&self.run_dir).status();
    }
}

/// Relayed RTP packets rtpengine has counted since it started.
fn relayed_packets() -> u64 {
    let out = Command::new("rtpengine-ctl").args(["-ip", "127.0.0.1", "-port", "22223", "list", "totals"]).output();
    let text = String::from_utf8_lossy(&out.expect("rtpengine-ctl runs").stdout).to_string();
    text.lines()
        .find(|l| l.trim_start().starts_with("Total relayed packets") && !l.contains("errors"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no relayed packets total in {text}"))
}

fn sipp(scenario: &str, args: &[&str], log: &Path) -> std::process::Child {
    let log = std::fs::File::create(log).unwrap();
    Command::new("sipp")
        .arg("-sf")
        .arg(Path::new(SIP).join("sipp").join(scenario))
        .args(args)
        .args(["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"])
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("sipp starts")
}

async fn wait_exit(mut child: std::process::Child, what: &str, log: &Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = std::fs::read_to_string(log).unwrap_or_default();
            assert!(status.success(), "{what} exited {status}:\n{out}");
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_elder_dialling_the_hotline_through_kamailio_rings_the_console_and_the_call_is_kept() {
    let missing: Vec<_> =
        ["kamailio", "rtpengine", "rtpengine-ctl", "sipp"].into_iter().filter(|p| which(p).is_none()).collect();
    if !missing.is_empty() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{missing:?} must be installed when CI=true");
        eprintln!("skipped: no {missing:?} (deploy/sip/start-local --install installs them)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path());
    let app =
        spawn_app_with(&backend, &unique("anxind", "sip"), |c| c.telephony.token = Some(Secret::new(TOKEN))).await;
    let mut console = TestConsole::connect(app.http, None).await;

    let (sip_port, dispatch_port, elder_port) = (free_udp_port(), free_udp_port(), free_udp_port());
    let run_dir = dir.path().join("sip");
    let server = SipServer::start(&run_dir, &format!("http://{}", app.http), sip_port, dispatch_port);
    let packets_before = relayed_packets();

    // The dispatcher's console (SIPp as UAS, its SIP user `wang`, a dispatcher in the ledger)
    // rings for a second and answers; the elder (e-2, whose phone is 13800000002) dials the
    // hotline and talks for 4 s.
    let uas_log = run_dir.join("uas.log");
    let uas = sipp(
        "dispatcher-answer.xml",
        &[
            "-key",
            "console",
            "wang",
            "-i",
            "127.0.0.1",
            "-p",
            &dispatch_port.to_string(),
            "-mi",
            "127.0.0.1",
            "-mp",
            "32000",
        ],
        &uas_log,
    );
    tokio::time::sleep(Duration::from_millis(300)).await; // its socket is bound
    let uac_log = run_dir.join("uac.log");
    let target = format!("127.0.0.1:{sip_port}");
    let uac = sipp(
        "elder-call.xml",
        &[
            "-s",
            "96110",
            "-key",
            "caller",
            "13800000002",
            "-i",
            "127.0.0.1",
            "-p",
            &elder_port.to_string(),
            "-mi",
            "127.0.0.1",
            "-mp",
            "31000",
            &target,
        ],
        &uac_log,
    );

    // The console sees it ring, on her device, with her name.
    let ringing = console.incident_for("d-2").await;
    assert_eq!(ringing["incident"]["kind"], "call", "{ringing}");
    assert_eq!(ringing["incident"]["elder"]["name"], "长者2");
    assert_eq!(ringing["incident"]["calls"][0]["from"], "13800000002");
    assert_eq!(ringing["incident"]["calls"][0]["caller"], "elder_phone");

    wait_exit(uac, "the elder's call (SIPp UAC)", &uac_log).await;
    wait_exit(uas, "the dispatcher's answer (SIPp UAS)", &uas_log).await;
    assert!(relayed_packets() > packets_before, "RTP went through rtpengine");

    // Stored: rang, answered by wang (who then holds it), ended with a BYE and a talk time.
    let id = ringing["incident"]["id"].as_u64().map(anxin_core::IncidentId).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let events = loop {
        let events = app.store.incident_events(id).await.unwrap();
        if events.iter().any(|e| matches!(e.change, Change::CallEnded { .. })) {
            break events;
        }
        assert!(tokio::time::Instant::now() < deadline, "the call's end reached anxind:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let incident = app
        .store
        .resume(anxin_core::Timestamp(0))
        .await
        .unwrap()
        .open
        .into_iter()
        .find(|i| i.id == id)
        .expect("still open");
    assert_eq!(incident.kind, IncidentKind::Call);
    assert_eq!(incident.claimed_by.as_deref(), Some("wang"));
    let answered = events.iter().find(|e| matches!(e.change, Change::CallAnswered { .. })).expect("answered");
    assert_eq!(answered.actor, Actor::Dispatcher("wang".into()));
    let talk = events.iter().find_map(|e| match e.change {
        Change::CallEnded { reason: CallEnd::Bye, talk_s, .. } => Some(talk_s),
        _ => None,
    });
    assert!(matches!(talk, Some(Some(s)) if s >= 1), "ended with a BYE after talking: {talk:?}");
    assert_eq!(app.metric("anxin_telephony_events_total{event=\"ringing\",outcome=\"opened\"}").await, 1.0);
    drop(server);
    app.stop().await;
}
