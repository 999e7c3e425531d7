//! Device provisioning without restarts: when a device is added, its password changed or it is
//! retired, the broker learns its account at once.
//!
//! One trait, three brokers' ways:
//! - the embedded broker's guard changes its accounts in memory ([`GuardAccounts`]), read at
//!   every CONNECT;
//! - Mosquitto with its dynamic-security plugin is told over MQTT ([`Dynsec`]);
//! - a broker fed by `anxind broker-files` ([`Files`]) cannot be told: the files must be
//!   written again and the broker reloaded, which this says once in the log.
//!
//! The ledger stays the truth: a provisioner only makes the broker agree with it, each call
//! for one device, and [`Provisioner::reconcile`] at start for all of them.

mod dynsec;

pub use dynsec::{Dynsec, DynsecOptions};

use crate::broker::GuardAccounts;
use crate::credentials::{is_hash, new_hash};
use anxin_core::DeviceId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use thiserror::Error;

/// A device's broker account: its id (the user name) and its password, as far as it is known.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceAccount {
    pub id: DeviceId,
    /// The plaintext, only when the device is new or its password was reset; never logged.
    pub password: Option<String>,
    /// Mosquitto's `$7$` hash of the password, as the ledger keeps it.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for DeviceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAccount")
            .field("id", &self.id)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("password_hash", &self.password_hash.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Why the broker could not be made to agree with the ledger.
#[derive(Debug, Error)]
pub enum ProvisionError {
    /// The broker needs a password to create the account and was given none it can use
    /// (Mosquitto's dynamic security takes only a plaintext password).
    #[error("device {device}: the broker needs {needs} to create its account")]
    NoPassword { device: DeviceId, needs: &'static str },
    #[error("device {device}: the password hash is not Mosquitto's `$7$iterations$salt$hash`")]
    BadHash { device: DeviceId },
    /// Mosquitto answered a dynamic-security command with an error.
    #[error("Mosquitto's dynamic security refused {command} for {name}: {error}")]
    Refused { command: String, name: String, error: String },
    #[error("Mosquitto's dynamic security did not answer {command} for {name} within {within:?}")]
    NoAnswer { command: String, name: String, within: Duration },
    #[error("cannot sign in to Mosquitto as the dynamic-security admin: {0}")]
    SignIn(String),
    #[error("the dynamic-security connection has stopped")]
    Stopped,
}

/// What [`Provisioner::reconcile`] did, for the start-up log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Live devices whose account the broker now has (created, or set again).
    pub admitted: usize,
    /// Retired devices the broker now refuses.
    pub retired: usize,
    /// Live devices the broker has no account for and none could be made: no password it
    /// can use is known (a new one must be issued, or the account created by hand).
    pub without_password: Vec<DeviceId>,
    /// What the operator must do, when the broker cannot be told (the files' set-up).
    pub notes: Vec<String>,
}

/// Makes the broker's accounts follow the ledger's devices, without restarting it.
#[async_trait::async_trait]
pub trait Provisioner: Send + Sync + std::fmt::Debug + 'static {
    /// The device may connect from now on, with this password (a new or a changed one).
    async fn upsert(&self, account: &DeviceAccount) -> Result<(), ProvisionError>;

    /// The device is refused at CONNECT from now on, and a live connection of it is closed
    /// where the broker can.
    async fn retire(&self, device: &DeviceId) -> Result<(), ProvisionError>;

    /// At start: makes the broker agree with the ledger (its live accounts, its retired ids).
    async fn reconcile(&self, live: &[DeviceAccount], retired: &[DeviceId]) -> Result<ReconcileReport, ProvisionError>;

    /// Which broker's way this is, for logs: `embedded`, `dynsec` or `files`.
    fn kind(&self) -> &'static str;
}

/// The embedded broker: its guard's accounts change in memory, and a retired device's live
/// connection is closed by the guard. When the broker checks no passwords (no
/// `mqtt.embedded_accounts`), only retirement has an effect: a retired id is refused.
#[async_trait::async_trait]
impl Provisioner for GuardAccounts {
    async fn upsert(&self, account: &DeviceAccount) -> Result<(), ProvisionError> {
        let device = &account.id;
        if !self.checks_passwords() {
            // Open mode: nothing to check but that it is no longer retired.
            let _ = self.admit(device.as_str(), None);
            return Ok(());
        }
        let hash = match (&account.password_hash, &account.password) {
            (Some(hash), _) => hash.clone(),
            (None, Some(password)) => new_hash(password),
            (None, None) => {
                return Err(ProvisionError::NoPassword { device: device.clone(), needs: "a password or its hash" })
            }
        };
        self.admit(device.as_str(), Some(&hash)).map_err(|_| ProvisionError::BadHash { device: device.clone() })
    }

    async fn retire(&self, device: &DeviceId) -> Result<(), ProvisionError> {
        let closed = GuardAccounts::retire(self, device.as_str());
        tracing::info!(%device, closed, "device retired: the embedded broker refuses it");
        Ok(())
    }

    async fn reconcile(&self, live: &[DeviceAccount], retired: &[DeviceId]) -> Result<ReconcileReport, ProvisionError> {
        let mut report = ReconcileReport::default();
        for account in live {
            match self.upsert(account).await {
                Ok(()) => report.admitted += 1,
                Err(ProvisionError::NoPassword { device, .. }) => report.without_password.push(device),
                Err(e) => return Err(e),
            }
        }
        for device in retired {
            GuardAccounts::retire(self, device.as_str());
            report.retired += 1;
        }
        Ok(report)
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

/// A broker that reads its accounts from files (`anxind broker-files`): it cannot be told of
/// a change. Each change is accepted and does nothing at the broker; the first one says, once,
/// in the log, that the files must be written again and the broker reloaded.
#[derive(Debug, Default)]
pub struct Files {
    warned: AtomicBool,
}

impl Files {
    /// What the operator must do after the ledger's devices change.
    pub const NOTE: &'static str = "the broker's accounts come from files: run `anxind broker-files` again and \
                                    reload the broker (SIGHUP), or added devices are refused and retired ones \
                                    still let in";

    fn warn_once(&self) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!("{}", Self::NOTE);
        }
    }
}

#[async_trait::async_trait]
impl Provisioner for Files {
    async fn upsert(&self, account: &DeviceAccount) -> Result<(), ProvisionError> {
        if account.password_hash.as_deref().is_some_and(|h| !is_hash(h)) {
            return Err(ProvisionError::BadHash { device: account.id.clone() });
        }
        self.warn_once();
        Ok(())
    }

    async fn retire(&self, _device: &DeviceId) -> Result<(), ProvisionError> {
        self.warn_once();
        Ok(())
    }

    async fn reconcile(&self, _: &[DeviceAccount], _: &[DeviceId]) -> Result<ReconcileReport, ProvisionError> {
        Ok(ReconcileReport { notes: vec![Self::NOTE.to_string()], ..ReconcileReport::default() })
    }

    fn kind(&self) -> &'static str {
        "files"
    }
}
