//! Commands from people (responders' phones, dispatchers' consoles) to the engine. The engine
//! task owns the engine; these travel to it on a bounded channel with a reply, and the reply
//! is sent only after what they caused is stored. The frames that carry them are typed in
//! `anxin_proto::ws` and re-exported here.

pub use anxin_proto::ws::{ClientFrame, DispatcherVerb, FrameError};
pub use anxin_proto::{Answer, Caller, Command, CommandSender, Refused, Reply, Request};
use sha2::{Digest, Sha256};

/// SHA-256 of a sign-in token, lowercase hex: what the registry keeps instead of the token.
pub fn token_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hash_to_known_values() {
        assert_eq!(token_sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
