//! `anxind broker-files`: the broker's password and ACL files, written from the registry.
//!
//! Each device and each station gets an account whose user name is its id; the engine gets
//! one more. Passwords already in the output's `passwd` are kept (re-running after adding
//! devices changes nothing for the others); accounts no longer in the registry are dropped.
//! The passwords created by a run are added to `new-passwords.csv` for the people who set up
//! the devices and the engine; they exist nowhere else, so the sheet is to be handed out and
//! deleted.

use anxin_core::Registry;
use anxin_mqtt::credentials::{mosquitto_acl, new_password, PasswordFile};
use anxin_mqtt::Topics;
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The engine's user name when `mqtt.username` is not set.
pub const ENGINE_USER: &str = "anxin-engine";

/// What one run wrote.
#[derive(Debug, PartialEq, Eq)]
pub struct Written {
    pub accounts: usize,
    pub new_passwords: usize,
}

/// Writes `passwd`, `acl` and, when there are new accounts, `new-passwords.csv` in `out`.
pub fn write(registry: &Registry, topics: &Topics, engine_user: &str, out: &Path) -> anyhow::Result<Written> {
    let mut kinds: BTreeMap<&str, &str> = BTreeMap::new();
    kinds.insert(engine_user, "engine");
    let accounts = registry
        .devices
        .iter()
        .map(|d| (d.id.as_str(), "device"))
        .chain(registry.stations.iter().map(|s| (s.id.as_str(), "station")));
    for (user, kind) in accounts {
        if let Some(other) = kinds.insert(user, kind) {
            bail!("the {kind} {user:?} has the same id as a {other}: broker user names must be unique");
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let passwd_path = out.join("passwd");
    let mut passwd = match std::fs::read_to_string(&passwd_path) {
        Ok(text) => {
            PasswordFile::parse(&text).with_context(|| format!("{} is not a password file", passwd_path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => PasswordFile::default(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", passwd_path.display())),
    };
    passwd.retain(|user| kinds.contains_key(user));
    let mut created = Vec::new();
    for (user, kind) in &kinds {
        if !passwd.contains(user) {
            let password = new_password();
            passwd.set(user, &password);
            created.push(format!("{user},{kind},{password}\n"));
        }
    }
    // The files hold secrets: readable by their owner only (give them to the broker's user).
    write_private(&passwd_path, &passwd.to_text())?;
    write_private(&out.join("acl"), &mosquitto_acl(topics, engine_user))?;
    if !created.is_empty() {
        // Appended, never replaced: a sheet nobody has handed out yet must not be lost.
        let csv = out.join("new-passwords.csv");
        let mut sheet = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&csv)
            .with_context(|| format!("cannot write {}", csv.display()))?;
        if sheet.metadata()?.len() == 0 {
            sheet.write_all(b"user,kind,password\n")?;
        }
        sheet.write_all(created.concat().as_bytes())?;
        sheet.sync_all()?;
    }
    Ok(Written { accounts: kinds.len(), new_passwords: created.len() })
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_old_passwords_drops_gone_accounts_and_refuses_clashing_ids() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = crate::demo::district(7);
        registry.devices.truncate(3);
        registry.stations.truncate(1);
        let topics = Topics::default();
        let first = write(&registry, &topics, "anxin-engine", dir.path()).unwrap();
        assert_eq!(first, Written { accounts: 5, new_passwords: 5 });
        let sheet = std::fs::read_to_string(dir.path().join("new-passwords.csv")).unwrap();
        let passwd = PasswordFile::parse(&std::fs::read_to_string(dir.path().join("passwd")).unwrap()).unwrap();
        for row in sheet.lines().skip(1) {
            let mut cols = row.split(',');
            let (user, _, password) = (cols.next().unwrap(), cols.next(), cols.next().unwrap());
            assert!(passwd.verify(user, password.as_bytes()), "{user}'s password from the sheet");
        }
        let mode = std::fs::metadata(dir.path().join("passwd")).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);

        // One device gone, one new: only the new one gets a password; the rest keep theirs.
        let gone = registry.devices.remove(0).id;
        registry.devices.push(crate::demo::district(7).devices[5].clone());
        let second = write(&registry, &topics, "anxin-engine", dir.path()).unwrap();
        assert_eq!(second, Written { accounts: 5, new_passwords: 1 });
        let sheet = std::fs::read_to_string(dir.path().join("new-passwords.csv")).unwrap();
        assert_eq!(sheet.lines().count(), 1 + 5 + 1, "the new password is added to the sheet not yet handed out");
        let after = PasswordFile::parse(&std::fs::read_to_string(dir.path().join("passwd")).unwrap()).unwrap();
        assert!(!after.contains(gone.as_str()));
        for user in passwd.users().filter(|u| *u != gone.as_str()) {
            assert!(after.contains(user));
        }

        registry.stations[0].id = anxin_core::StationId::parse(registry.devices[0].id.as_str()).unwrap();
        let err = write(&registry, &topics, "anxin-engine", dir.path()).unwrap_err();
        assert!(err.to_string().contains("same id"), "{err}");
    }
}
