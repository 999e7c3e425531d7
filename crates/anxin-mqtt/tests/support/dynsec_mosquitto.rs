//! A Mosquitto of a test's own on a free port, with the dynamic-security plugin: shared by
//! `anxin-mqtt`'s provisioning test and anxind's ledger test (`#[path]`-included by both;
//! under `tests/support/`, cargo does not build it as a test of its own).
//!
//! It has `deploy/mosquitto/anxin.conf`'s settings and `deploy/mosquitto/dynsec.conf` instead
//! of the password and ACL files. Its dynamic-security file holds the plugin's admin and the
//! engine's account, as the deploy README has them made. It skips when Mosquitto or the
//! plugin is not installed, except under `CI=true`, where it fails.

use anxin_mqtt::credentials::hash_password;
use anxin_mqtt::Topics;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The plugin's admin: signs in to send dynamic-security commands.
pub const ADMIN: (&str, &str) = ("admin", "admin horse");
/// The engine's account: reads every device's events, sends commands and stations' alerts.
pub const ENGINE: (&str, &str) = ("anxin-engine", "engine horse");

/// Where Debian installs the plugin (the path in `deploy/mosquitto/dynsec.conf`).
const PLUGIN: &str = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so";
const MOSQUITTO: &str = "/usr/sbin/mosquitto";
/// How long Mosquitto has to listen once started.
const START_WITHIN: Duration = Duration::from_secs(30);

/// A running Mosquitto, stopped when dropped.
pub struct Mosquitto {
    _child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// A dynamic-security client entry with `password`, in the plugin's own format (the same
/// PBKDF2-SHA512 as the `$7$` password files).
fn dynsec_client(user: &str, password: &str, role: &str) -> serde_json::Value {
    let salt = *b"anxin-tests!";
    let hash = hash_password(password.as_bytes(), &salt, 101);
    let parts: Vec<&str> = hash.split('$').collect(); // "", "7", iterations, salt, hash
    serde_json::json!({
        "username": user, "password": parts[4], "salt": parts[3], "iterations": 101,
        "roles": [{ "rolename": role }],
    })
}

impl Mosquitto {
    /// Started with the engine's role on `topics`' root; `None` (skip) when Mosquitto or the
    /// plugin is missing, a panic instead under `CI=true`.
    pub async fn start(topics: &Topics) -> Option<Self> {
        let missing = [MOSQUITTO, PLUGIN].into_iter().find(|p| !std::path::Path::new(p).exists());
        if let Some(missing) = missing {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{missing} is missing: install Debian's mosquitto package");
            }
            eprintln!("skipped: {missing} is missing (Debian's mosquitto package)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let control = "$CONTROL/dynamic-security/#";
        let acl = |acltype: &str, topic: &str| serde_json::json!({ "acltype": acltype, "topic": topic, "allow": true });
        let security = serde_json::json!({
            "clients": [dynsec_client(ADMIN.0, ADMIN.1, "admin"), dynsec_client(ENGINE.0, ENGINE.1, "anxin-engine")],
            "roles": [
                { "rolename": "admin", "acls": [acl("publishClientSend", control), acl("publishClientReceive", control), acl("subscribePattern", control)] },
                { "rolename": "anxin-engine", "acls": [
                    acl("subscribePattern", &topics.events_filter()),
                    acl("publishClientSend", &topics.commands_filter()),
                    acl("publishClientSend", &topics.alerts_filter()),
                ] },
            ],
            "defaultACLAccess": { "publishClientSend": false, "publishClientReceive": true, "subscribe": false, "unsubscribe": true },
        });
        let security_file = dir.path().join("dynamic-security.json");
        std::fs::write(&security_file, serde_json::to_string_pretty(&security).unwrap()).unwrap();
        let files = ["password_file ", "acl_file "];
        let mut conf: String = include_str!("../../../../deploy/mosquitto/anxin.conf")
            .lines()
            .filter(|l| !files.iter().any(|f| l.starts_with(f)))
            .map(|l| format!("{l}\n"))
            .collect();
        conf = conf
            .replace("listener 18830 127.0.0.1", &format!("listener {port} 127.0.0.1"))
            .replace("persistence true", "persistence false");
        let dynsec = include_str!("../../../../deploy/mosquitto/dynsec.conf")
            .replace("/var/lib/mosquitto/dynamic-security.json", &security_file.display().to_string());
        assert!(dynsec.contains(&security_file.display().to_string()), "dynsec.conf's config file line moved");
        assert!(dynsec.contains(&format!("plugin {PLUGIN}")), "dynsec.conf's plugin line moved");
        conf.push_str(&dynsec);
        let path = dir.path().join("mosquitto.conf");
        std::fs::write(&path, conf).unwrap();
        // Started as root, Mosquitto drops to its own user, which must be able to rewrite the
        // dynamic-security file (it does at every change).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::set_permissions(&security_file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto runs");
        let deadline = Instant::now() + START_WITHIN;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "mosquitto listens on {port}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(Self { _child: child, port, _dir: dir })
    }
}
