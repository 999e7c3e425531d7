//! Broker accounts: who may connect, and to which topics.
//!
//! One password file serves both brokers. It is Mosquitto's own format (`user:$7$…`,
//! PBKDF2-SHA512), so a deployment hands it to Mosquitto as `password_file`, and the embedded
//! broker reads the same file. The rule both enforce: a device's user name is its id, and it
//! may publish only its own events and read only its own commands; a station reads only its
//! own alerts; the engine's account reads every device's events and writes commands and
//! alerts. `anxind broker-files` writes the password file and Mosquitto's ACL file from the
//! registry.

use crate::Topics;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::collections::BTreeMap;
use thiserror::Error;

/// Mosquitto's default for new passwords (`mosquitto_passwd` writes the same).
pub const ITERATIONS: u32 = 101;
const SALT_BYTES: usize = 12;
const HASH_BYTES: usize = 64;

/// Why a password file could not be read.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CredentialsError {
    #[error("password file line {line}: expected `user:$7$iterations$salt$hash`")]
    BadLine { line: usize },
    #[error("password file line {line}: user {user:?} appears twice")]
    Repeated { line: usize, user: String },
}

/// Why [`PasswordFile::set_hash`] refused an account.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("the account {user:?} is not a user name a password file can hold, or its hash is not Mosquitto's `$7$iterations$salt$hash`")]
pub struct BadAccount {
    pub user: String,
}

/// A broker password file: user name → hash, in Mosquitto's `$7$` format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordFile {
    entries: BTreeMap<String, String>,
}

impl PasswordFile {
    /// Reads the text of a password file. Blank lines and `#` comments are skipped.
    pub fn parse(text: &str) -> Result<Self, CredentialsError> {
        let mut entries = BTreeMap::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = CredentialsError::BadLine { line: n + 1 };
            let (user, hash) = line.split_once(':').ok_or(bad.clone())?;
            if user.is_empty() || Hash::parse(hash).is_none() {
                return Err(bad);
            }
            if entries.insert(user.to_string(), hash.to_string()).is_some() {
                return Err(CredentialsError::Repeated { line: n + 1, user: user.to_string() });
            }
        }
        Ok(Self { entries })
    }

    /// The file's text, one `user:hash` line per account, sorted by user.
    pub fn to_text(&self) -> String {
        self.entries.iter().map(|(user, hash)| format!("{user}:{hash}\n")).collect()
    }

    /// Whether `user` exists and `password` is theirs.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        let Some(hash) = self.entries.get(user).and_then(|h| Hash::parse(h)) else { return false };
        let mut derived = [0u8; HASH_BYTES];
        pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, &hash.salt, hash.iterations, &mut derived);
        // Every byte is compared, whatever the first difference.
        hash.hash.len() == HASH_BYTES && derived.iter().zip(&hash.hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// Sets `user`'s password (a fresh salt each time).
    pub fn set(&mut self, user: &str, password: &str) {
        self.entries.insert(user.to_string(), new_hash(password));
    }

    /// Sets `user`'s password by its hash, as the ledger keeps it (`$7$…`); refuses anything
    /// else, so that a bad hash is not taken for a password nobody can type.
    pub fn set_hash(&mut self, user: &str, hash: &str) -> Result<(), BadAccount> {
        let line_safe = !user.is_empty() && !user.starts_with('#') && !user.contains([':', '\n', '\r']);
        if !line_safe || user.trim() != user || !is_hash(hash) {
            return Err(BadAccount { user: user.to_string() });
        }
        self.entries.insert(user.to_string(), hash.to_string());
        Ok(())
    }

    /// Removes `user`'s account; whether there was one.
    pub fn remove(&mut self, user: &str) -> bool {
        self.entries.remove(user).is_some()
    }

    pub fn contains(&self, user: &str) -> bool {
        self.entries.contains_key(user)
    }

    /// Keeps only the users `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.entries.retain(|user, _| keep(user));
    }

    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

/// `$7$iterations$salt$hash`, base64 with padding, as Mosquitto writes it.
pub fn hash_password(password: &[u8], salt: &[u8], iterations: u32) -> String {
    let mut hash = [0u8; HASH_BYTES];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, iterations, &mut hash);
    format!("$7${iterations}${}${}", B64.encode(salt), B64.encode(hash))
}

/// `password`'s hash with a fresh salt and Mosquitto's default iterations: what
/// `mosquitto_passwd` would write for it.
pub fn new_hash(password: &str) -> String {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).expect("the operating system's random source");
    hash_password(password.as_bytes(), &salt, ITERATIONS)
}

/// Whether `text` is a hash in Mosquitto's `$7$` format.
pub fn is_hash(text: &str) -> bool {
    Hash::parse(text).is_some()
}

struct Hash {
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl Hash {
    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.strip_prefix("$7$")?.split('$');
        let iterations = parts.next()?.parse().ok().filter(|&i| i > 0)?;
        let salt = B64.decode(parts.next()?).ok()?;
        let hash = B64.decode(parts.next()?).ok()?;
        (parts.next().is_none() && !salt.is_empty() && hash.len() == HASH_BYTES).then_some(Self {
            iterations,
            salt,
            hash,
        })
    }
}

/// A new random password for a device or station: 24 characters a person can read out
/// (no 0/O, 1/l/I), about 120 bits.
pub fn new_password() -> String {
    const ALPHABET: &[u8] = b"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    // 256 is not a multiple of 56; the bias this leaves (< 2^-2 per character) costs well under a bit.
    bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// Mosquitto's ACL file for the topic layout under `topics`, with `engine` as the engine's
/// user name: the engine reads every device's events and writes commands and station alerts,
/// and its nodes tell each other of their zones; every other user (a device or a station,
/// whose user name is its id) only its own.
pub fn mosquitto_acl(topics: &Topics, engine: &str) -> String {
    let (events, commands, alerts) = (topics.events_filter(), topics.commands_filter(), topics.alerts_filter());
    let (zones, nodes) = (topics.zones_filter(), topics.nodes_filter());
    let own = |filter: &str| filter.replacen('+', "%u", 1);
    format!(
        "# Written by `anxind broker-files` from the registry. Each device's user name is its id.\n\
         # The engine: every device's events in, commands and station alerts out.\n\
         user {engine}\n\
         topic read {events}\n\
         topic write {commands}\n\
         topic write {alerts}\n\
         # Its nodes, with the zones spread over them: each zone's committed views, and\n\
         # the requests they forward each other.\n\
         topic readwrite {zones}\n\
         topic readwrite {nodes}\n\
         \n\
         # Everyone else: a device publishes its own events and reads its own commands; a\n\
         # station's duty line reads its own alerts. Nothing more.\n\
         pattern write {}\n\
         pattern read {}\n\
         pattern read {}\n",
        own(&events),
        own(&commands),
        own(&alerts),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_and_another_does_not() {
        let mut file = PasswordFile::default();
        file.set("d-1", "right horse");
        let again = PasswordFile::parse(&file.to_text()).unwrap();
        assert!(again.verify("d-1", b"right horse"));
        assert!(!again.verify("d-1", b"right horsE"));
        assert!(!again.verify("d-2", b"right horse"));
    }

    #[test]
    fn reads_what_mosquitto_passwd_writes() {
        // `mosquitto_passwd -b -c file d-9 'hello there'` (Mosquitto 2.0.11, Debian 12).
        let line = "d-9:$7$101$+1snpZyNXufguqcW$vzRyGFN+pSvEAC1uqNmoz3SIi5/qkdDQH/uvznwyadTvSuQyBTd1poED1rXWKCJvKGiuLmwe4mzVmL2iKGp0eQ==";
        let file = PasswordFile::parse(line).unwrap();
        assert!(file.verify("d-9", b"hello there"));
        assert!(!file.verify("d-9", b"hello there "));
        let salt = B64.decode("+1snpZyNXufguqcW").unwrap();
        assert_eq!(format!("d-9:{}", hash_password(b"hello there", &salt, 101)), line);
    }

    #[test]
    fn an_account_is_set_by_its_hash_and_removed() {
        let mut file = PasswordFile::default();
        file.set_hash("d-1", &new_hash("right horse")).unwrap();
        assert!(file.verify("d-1", b"right horse"));
        assert_eq!(file.set_hash("d-1", "right horse"), Err(BadAccount { user: "d-1".into() }));
        assert!(file.set_hash("#d-2", &new_hash("x")).is_err(), "a comment line is no account");
        assert!(file.verify("d-1", b"right horse"), "a bad hash changes nothing");
        assert!(file.remove("d-1") && !file.remove("d-1"));
        assert!(!file.verify("d-1", b"right horse"));
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(PasswordFile::parse("# ok\n\nd-1:plain\n"), Err(CredentialsError::BadLine { line: 3 }));
        let line = format!("d-1:{}", hash_password(b"x", b"saltsaltsalt", 101));
        assert_eq!(
            PasswordFile::parse(&format!("{line}\n{line}\n")),
            Err(CredentialsError::Repeated { line: 2, user: "d-1".into() })
        );
    }

    #[test]
    fn new_passwords_differ_and_are_readable() {
        let (a, b) = (new_password(), new_password());
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() && !"01lIO".contains(c)));
    }
}
