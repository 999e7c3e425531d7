//! Mosquitto's dynamic-security plugin, told of each device over MQTT.
//!
//! anxind signs in as the plugin's admin, publishes JSON commands to
//! `$CONTROL/dynamic-security/v1` and reads the answers on `…/v1/response`, each matched to its
//! command by `correlationData`. Every device gets an account named after its id and a role of
//! its own, `anxin-device-{id}`, that lets it publish its own events and subscribe to its own
//! commands: Mosquitto 2.0's dynamic security does not substitute `%u` or `%c` in a role's
//! topics (it matches them as literal text; substitution came with 2.1), so one shared role
//! cannot say "its own". A retired device's account and role are deleted, not disabled: the
//! ledger keeps the account's history, the broker keeps only live devices, Mosquitto closes
//! the device's connection when its account is deleted, and retiring twice is harmless.

use super::{DeviceAccount, ProvisionError, Provisioner, ReconcileReport};
use crate::Topics;
use anxin_core::DeviceId;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeReasonCode};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio_util::task::AbortOnDropHandle;

const CONTROL: &str = "$CONTROL/dynamic-security/v1";
const RESPONSE: &str = "$CONTROL/dynamic-security/v1/response";
/// The largest answer taken: `listClients` names every account.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// How long the connection waits before trying again after it dropped.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// How anxind reaches Mosquitto as the dynamic-security admin.
#[derive(Clone)]
pub struct DynsecOptions {
    pub host: String,
    pub port: u16,
    /// The admin connection's own client id (not the engine's: two sessions would replace
    /// each other).
    pub client_id: String,
    pub username: String,
    pub password: String,
    /// Where devices publish and listen, for their roles' topics.
    pub topics: Topics,
    /// How long Mosquitto has to answer a command.
    pub reply_within: Duration,
}

impl std::fmt::Debug for DynsecOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynsecOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("reply_within", &self.reply_within)
            .finish_non_exhaustive()
    }
}

/// One answer to one command.
#[derive(Debug)]
struct Answer {
    /// Mosquitto's error text (`Client already exists`, `Role not found`), if it failed.
    error: Option<String>,
    data: Option<Value>,
}

/// Commands sent and not yet answered, by their `correlationData`.
type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<Answer>>>>;

/// The state of the admin connection, as its task last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Connection {
    Connecting,
    /// Signed in, and subscribed to the answers.
    Ready,
    /// Dropped or refused, with why; the task tries again.
    Down(String),
}

/// Provisioning through Mosquitto's dynamic-security plugin (see the module `anxin_mqtt::provision::dynsec`).
pub struct Dynsec {
    client: AsyncClient,
    waiting: Waiting,
    topics: Topics,
    reply_within: Duration,
    /// Numbers each command's `correlationData`.
    next: AtomicU64,
    admin: String,
    /// The connection's task, stopped when this is dropped.
    _task: AbortOnDropHandle<()>,
}

impl std::fmt::Debug for Dynsec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dynsec").field("admin", &self.admin).finish_non_exhaustive()
    }
}

impl Dynsec {
    /// Signs in as the admin and subscribes to the answers; fails if Mosquitto refuses the
    /// login or does not answer within `reply_within`. Afterwards a dropped connection is made
    /// again by itself (a command sent meanwhile may go unanswered: its caller is told).
    pub async fn connect(options: DynsecOptions) -> Result<Self, ProvisionError> {
        let mut mqtt = MqttOptions::new(options.client_id.clone(), options.host.clone(), options.port);
        mqtt.set_credentials(options.username.clone(), options.password.clone());
        mqtt.set_keep_alive(Duration::from_secs(30));
        mqtt.set_max_packet_size(MAX_ANSWER_BYTES, MAX_ANSWER_BYTES);
        let (client, events) = AsyncClient::new(mqtt, 64);
        let waiting = Waiting::default();
        let (state_tx, mut state) = watch::channel(Connection::Connecting);
        let task = tokio::spawn(run_connection(events, client.clone(), waiting.clone(), state_tx));
        let task = AbortOnDropHandle::new(task);
        let at = format!("{}:{}", options.host, options.port);
        let ready = tokio::time::timeout(options.reply_within, async {
            loop {
                match state.borrow_and_update().clone() {
                    Connection::Ready => return Ok(()),
                    Connection::Down(why) => return Err(why),
                    Connection::Connecting => {}
                }
                if state.changed().await.is_err() {
                    return Err("the connection's task stopped".to_string());
                }
            }
        })
        .await;
        match ready {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Err(ProvisionError::SignIn(format!("{at} as {}: {why}", options.username))),
            Err(_) => {
                return Err(ProvisionError::SignIn(format!(
                    "{at} as {}: not ready within {:?}",
                    options.username, options.reply_within
                )))
            }
        }
        let dynsec = Self {
            client,
            waiting,
            topics: options.topics,
            reply_within: options.reply_within,
            next: AtomicU64::new(1),
            admin: options.username,
            _task: task,
        };
        // A harmless command, to know now rather than at the first device that the plugin is
        // there and answers this account.
        match dynsec.run("the plugin", vec![json!({ "command": "getDefaultACLAccess" })]).await {
            Ok(answers) => match answers.into_iter().next().and_then(|a| a.error) {
                None => Ok(dynsec),
                Some(error) => Err(ProvisionError::SignIn(format!("{at} as {}: {error}", dynsec.admin))),
            },
            Err(ProvisionError::NoAnswer { within, .. }) => Err(ProvisionError::SignIn(format!(
                "{at} as {}: the dynamic-security plugin did not answer within {within:?}: is it loaded \
                 (deploy/mosquitto/dynsec.conf), and is this its admin account?",
                dynsec.admin
            ))),
            Err(e) => Err(e),
        }
    }

    /// The role that holds `device` to its own topics.
    pub fn role_of(device: &DeviceId) -> String {
        format!("anxin-device-{device}")
    }

    /// Sends `commands` in one message and waits for each one's answer, in order. `name` is
    /// what they are about (a device), for errors.
    async fn run(&self, name: &str, commands: Vec<Value>) -> Result<Vec<Answer>, ProvisionError> {
        let mut pending = Vec::with_capacity(commands.len());
        let mut tagged = Vec::with_capacity(commands.len());
        for mut command in commands {
            let tag = format!("anxin-{}", self.next.fetch_add(1, Ordering::Relaxed));
            let (tx, rx) = oneshot::channel();
            self.waiting.lock().expect("never poisoned: no panics while held").insert(tag.clone(), tx);
            let verb = command["command"].as_str().unwrap_or("?").to_string();
            command["correlationData"] = Value::String(tag.clone());
            tagged.push(command);
            pending.push((tag, verb, rx));
        }
        let body = serde_json::to_vec(&json!({ "commands": tagged })).expect("JSON values serialise");
        let sent = self.client.publish(CONTROL, QoS::AtLeastOnce, false, body).await;
        let mut answers = Vec::with_capacity(pending.len());
        let deadline = tokio::time::Instant::now() + self.reply_within;
        let mut failure = sent.err().map(|_| ProvisionError::Stopped);
        for (tag, verb, rx) in pending {
            if failure.is_none() {
                match tokio::time::timeout_at(deadline, rx).await {
                    Ok(Ok(answer)) => {
                        answers.push(answer);
                        continue;
                    }
                    Ok(Err(_)) => failure = Some(ProvisionError::Stopped),
                    Err(_) => {
                        failure = Some(ProvisionError::NoAnswer {
                            command: verb,
                            name: name.to_string(),
                            within: self.reply_within,
                        })
                    }
                }
            }
            self.waiting.lock().expect("never poisoned: no panics while held").remove(&tag);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(answers),
        }
    }

    /// Runs `commands` about `name`; an answer whose error is one of `harmless` (the thing
    /// already exists, or is already gone) counts as done.
    async fn run_all(&self, name: &str, commands: Vec<Value>, harmless: &[&str]) -> Result<(), ProvisionError> {
        let verbs: Vec<String> = commands.iter().map(|c| c["command"].as_str().unwrap_or("?").to_string()).collect();
        for (answer, verb) in self.run(name, commands).await?.into_iter().zip(verbs) {
            if let Some(error) = answer.error.filter(|e| !harmless.contains(&e.as_str())) {
                return Err(ProvisionError::Refused { command: verb, name: name.to_string(), error });
            }
        }
        Ok(())
    }

    /// The device's role, created if missing, with its topics.
    fn role_commands(&self, device: &DeviceId) -> Vec<Value> {
        let role = Self::role_of(device);
        let (events, commands) = (self.topics.events(device), self.topics.commands(device));
        let acl = |acltype: &str, topic: &str| json!({ "command": "addRoleACL", "rolename": role, "acltype": acltype, "topic": topic, "allow": true });
        vec![
            json!({ "command": "createRole", "rolename": role, "textname": format!("Anxin device {device}") }),
            acl("publishClientSend", &events),
            acl("subscribeLiteral", &commands),
            // Allowed by Mosquitto's default ACL access; said here too, should that be changed.
            acl("publishClientReceive", &commands),
        ]
    }

    /// The accounts Mosquitto has, by user name.
    async fn clients(&self) -> Result<HashSet<String>, ProvisionError> {
        let answer = self.run("all clients", vec![json!({ "command": "listClients", "verbose": false })]).await?;
        let answer = answer.into_iter().next().expect("one answer per command");
        if let Some(error) = answer.error {
            return Err(ProvisionError::Refused { command: "listClients".into(), name: "all clients".into(), error });
        }
        let names = answer.data.as_ref().and_then(|d| d["clients"].as_array()).cloned().unwrap_or_default();
        Ok(names.iter().filter_map(|n| n.as_str().or_else(|| n["username"].as_str())).map(str::to_string).collect())
    }

    /// The roles of `device`'s account; `None` when Mosquitto has no such account.
    async fn roles_of(&self, device: &DeviceId) -> Result<Option<Vec<String>>, ProvisionError> {
        let answers = self.run(device.as_str(), vec![json!({ "command": "getClient", "username": device })]).await?;
        let answer = answers.into_iter().next().expect("one answer per command");
        match answer.error {
            None => {}
            Some(e) if e == "Client not found" => return Ok(None),
            Some(error) => {
                return Err(ProvisionError::Refused { command: "getClient".into(), name: device.to_string(), error })
            }
        }
        let roles = answer.data.as_ref().and_then(|d| d["client"]["roles"].as_array()).cloned().unwrap_or_default();
        Ok(Some(roles.iter().filter_map(|r| r["rolename"].as_str()).map(str::to_string).collect()))
    }

    /// Makes sure `device`'s account, which exists, has its role with the right topics.
    /// (Mosquitto 2.0.11 answers `addClientRole` for a role the client has already with
    /// "Internal error", so the account's roles are looked at first.)
    async fn ensure_role(&self, device: &DeviceId, roles: &[String]) -> Result<(), ProvisionError> {
        let role = Self::role_of(device);
        let mut commands = self.role_commands(device);
        if !roles.contains(&role) {
            commands.push(json!({ "command": "addClientRole", "username": device, "rolename": role }));
        }
        self.run_all(device.as_str(), commands, ALREADY).await
    }
}

/// Mosquitto's answers that mean "already so" (2.0's texts).
const ALREADY: &[&str] = &["Role already exists", "ACL with this topic already exists"];
const GONE: &[&str] = &["Client not found", "Role not found"];

#[async_trait::async_trait]
impl Provisioner for Dynsec {
    async fn upsert(&self, account: &DeviceAccount) -> Result<(), ProvisionError> {
        let device = &account.id;
        let name = device.as_str();
        let Some(password) = &account.password else {
            // Mosquitto 2.0 creates an account only from a plaintext password. One it already
            // has keeps its password; its role is made sure of.
            let Some(roles) = self.roles_of(device).await? else {
                return Err(ProvisionError::NoPassword {
                    device: device.clone(),
                    needs: "a plaintext password (Mosquitto's dynamic security takes no hash)",
                });
            };
            return self.ensure_role(device, &roles).await;
        };
        let mut commands = self.role_commands(device);
        commands.push(json!({
            "command": "createClient", "username": name, "password": password,
            "textname": format!("Anxin device {device}"), "roles": [{ "rolename": Self::role_of(device) }],
        }));
        match self.run_all(name, commands, ALREADY).await {
            Err(ProvisionError::Refused { command, error, .. })
                if command == "createClient" && error == "Client already exists" =>
            {
                // A changed password: Mosquitto closes the device's connection, which signs in
                // again with the new one. Enabled, should someone have disabled it by hand.
                let commands = vec![
                    json!({ "command": "setClientPassword", "username": name, "password": password }),
                    json!({ "command": "enableClient", "username": name }),
                ];
                self.run_all(name, commands, &[]).await?;
                let roles = self.roles_of(device).await?.unwrap_or_default();
                self.ensure_role(device, &roles).await
            }
            done => done,
        }
    }

    async fn retire(&self, device: &DeviceId) -> Result<(), ProvisionError> {
        let commands = vec![
            json!({ "command": "deleteClient", "username": device }),
            json!({ "command": "deleteRole", "rolename": Self::role_of(device) }),
        ];
        self.run_all(device.as_str(), commands, GONE).await?;
        tracing::info!(%device, "device retired: Mosquitto deleted its account");
        Ok(())
    }

    async fn reconcile(&self, live: &[DeviceAccount], retired: &[DeviceId]) -> Result<ReconcileReport, ProvisionError> {
        let existing = self.clients().await?;
        let mut report = ReconcileReport::default();
        for device in retired.iter().filter(|d| existing.contains(d.as_str())) {
            Provisioner::retire(self, device).await?;
        }
        report.retired = retired.len();
        for account in live {
            if account.password.is_some() {
                self.upsert(account).await?;
            } else if !existing.contains(account.id.as_str()) {
                report.without_password.push(account.id.clone());
                continue;
            }
            report.admitted += 1;
        }
        Ok(report)
    }

    fn kind(&self) -> &'static str {
        "dynsec"
    }
}

/// The admin connection: signs in (again after a drop), subscribes to the answers, and hands
/// each answer to the command waiting for it.
async fn run_connection(
    mut events: EventLoop,
    client: AsyncClient,
    waiting: Waiting,
    state: watch::Sender<Connection>,
) {
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // Not `subscribe().await`: this task is the one that would make room for it.
                if let Err(e) = client.try_subscribe(RESPONSE, QoS::AtLeastOnce) {
                    tracing::warn!(error = %e, "dynamic security: cannot subscribe to the answers");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused = ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure));
                state.send_replace(if refused {
                    Connection::Down(format!("not allowed to subscribe to {RESPONSE}: not the plugin's admin?"))
                } else {
                    Connection::Ready
                });
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == RESPONSE => hand_over(&waiting, &p.payload),
            Ok(_) => {}
            Err(e) => {
                let was_ready = *state.borrow() == Connection::Ready;
                if was_ready {
                    tracing::warn!(error = %e, "dynamic security: the admin connection dropped; connecting again");
                }
                state.send_replace(Connection::Down(e.to_string()));
                // `poll` returns errors at once: wait before trying again.
                tokio::time::sleep(RECONNECT_AFTER).await;
            }
        }
    }
}

/// Hands each answer in a response message to the command waiting for it.
fn hand_over(waiting: &Waiting, payload: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(payload) else {
        return tracing::warn!("dynamic security: an answer that is not JSON");
    };
    for response in body["responses"].as_array().into_iter().flatten() {
        let Some(tag) = response["correlationData"].as_str() else { continue };
        let Some(tx) = waiting.lock().expect("never poisoned: no panics while held").remove(tag) else { continue };
        let answer =
            Answer { error: response["error"].as_str().map(str::to_string), data: response.get("data").cloned() };
        let _ = tx.send(answer);
    }
}
