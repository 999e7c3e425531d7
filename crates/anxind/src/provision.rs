//! Which provisioner tells the broker of devices added and retired (`mqtt.provisioning`), and
//! the start-up reconcile's log. The provisioners themselves are in `anxin_mqtt::provision`.

use crate::config::{broker_address, Config, Provisioning};
use anxin_core::DeviceId;
use anxin_mqtt::provision::{Dynsec, DynsecOptions, Files};
use anxin_mqtt::{DeviceAccount, EmbeddedBroker, Provisioner, ReconcileReport};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;

/// How long Mosquitto has to answer each dynamic-security command (it answers in
/// milliseconds; longer means it is gone or overloaded).
pub const DYNSEC_REPLY_WITHIN: Duration = Duration::from_secs(10);

/// The provisioner `config` asks for. `embedded` is the embedded broker anxind started, needed
/// for `provisioning = "embedded"` ([`crate::App::embedded_broker`]). For `"dynsec"` this
/// signs in to Mosquitto as the plugin's admin, and fails if it cannot.
pub async fn provisioner(config: &Config, embedded: Option<&EmbeddedBroker>) -> anyhow::Result<Arc<dyn Provisioner>> {
    let mqtt = &config.mqtt;
    Ok(match mqtt.provisioning() {
        Provisioning::Embedded => {
            let broker = embedded.context("mqtt.provisioning = \"embedded\" needs the embedded broker running")?;
            Arc::new(broker.accounts())
        }
        Provisioning::Dynsec => {
            let (host, port) = broker_address(&mqtt.broker)?;
            let (Some(username), Some(password)) = (&mqtt.dynsec_username, &mqtt.dynsec_password) else {
                anyhow::bail!(
                    "mqtt.dynsec_username and mqtt.dynsec_password must be set for provisioning = \"dynsec\""
                );
            };
            let options = DynsecOptions {
                host,
                port,
                // Not the engine's client id: two sessions under one id replace each other.
                client_id: format!("{}-dynsec", mqtt.client_id),
                username: username.clone(),
                password: password.expose().to_string(),
                topics: anxin_mqtt::Topics::new(&mqtt.topic_root).map_err(anyhow::Error::msg)?,
                reply_within: DYNSEC_REPLY_WITHIN,
            };
            Arc::new(Dynsec::connect(options).await.context("mqtt.provisioning = \"dynsec\"")?)
        }
        Provisioning::Files => Arc::new(Files::default()),
    })
}

/// Makes the broker agree with the ledger at start, and says in the log what it did and what
/// is left for the operator (live devices it has no account for and could not make one).
pub async fn reconcile(
    provisioner: &dyn Provisioner,
    live: &[DeviceAccount],
    retired: &[DeviceId],
) -> anyhow::Result<ReconcileReport> {
    let report = provisioner
        .reconcile(live, retired)
        .await
        .with_context(|| format!("cannot make the broker's accounts agree with the ledger ({})", provisioner.kind()))?;
    tracing::info!(
        provisioning = provisioner.kind(),
        admitted = report.admitted,
        retired = report.retired,
        without_password = report.without_password.len(),
        "broker accounts reconciled with the ledger"
    );
    if !report.without_password.is_empty() {
        let first: Vec<&str> = report.without_password.iter().take(10).map(DeviceId::as_str).collect();
        tracing::warn!(
            count = report.without_password.len(),
            first = ?first,
            "live devices the broker has no account for, and none can be made without a new password: \
             reset their passwords"
        );
    }
    for note in &report.notes {
        tracing::warn!("{note}");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_configured_provisioner_is_made_or_the_reason_it_cannot_be_is_given() {
        let embedded = Config::defaults();
        let e = provisioner(&embedded, None).await.unwrap_err().to_string();
        assert!(e.contains("needs the embedded broker"), "{e}");
        let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), 4096, None, Arc::new(|_| {})).unwrap();
        assert_eq!(provisioner(&embedded, Some(&broker)).await.unwrap().kind(), "embedded");

        let files = Config::load(None, &serde_json::json!({ "mqtt": { "broker": "mqtt://127.0.0.1:1883" } })).unwrap();
        let files = provisioner(&files, None).await.unwrap();
        assert_eq!(files.kind(), "files");
        let report = reconcile(files.as_ref(), &[], &[]).await.unwrap();
        assert!(report.notes[0].contains("broker-files"), "{report:?}");

        // Nobody listens there: the admin cannot sign in, and the error says where and as whom.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dynsec = Config::load(
            None,
            &serde_json::json!({ "mqtt": {
                "broker": format!("mqtt://127.0.0.1:{port}"), "provisioning": "dynsec",
                "dynsec_username": "anxin-admin", "dynsec_password": "hunter2",
            }}),
        )
        .unwrap();
        let e = format!("{:#}", provisioner(&dynsec, None).await.unwrap_err());
        assert!(e.contains("dynsec") && e.contains(&format!("127.0.0.1:{port} as anxin-admin")), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
