//! The broker's password file (Mosquitto's `user:$7$…` format), through
//! `PasswordFile::parse` as `anxind broker-files` reads an existing file to keep its
//! passwords. A file that reads is written back (`to_text`) as the same accounts.
#![no_main]

use anxin_mqtt::credentials::{CredentialsError, PasswordFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match PasswordFile::parse(text) {
        Ok(file) => {
            for user in file.users() {
                assert!(!user.is_empty() && !user.contains(':') && !user.starts_with('#'), "{user:?}");
            }
            assert_eq!(PasswordFile::parse(&file.to_text()), Ok(file.clone()), "{text:?}");
        }
        Err(CredentialsError::BadLine { line } | CredentialsError::Repeated { line, .. }) => {
            assert!(line >= 1 && line <= text.lines().count(), "line {line} of {text:?}");
        }
    }
});
