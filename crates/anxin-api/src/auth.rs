//! Dispatchers' and supervisors' sign-in: Argon2id password hashes kept in the registry, and
//! sessions held in memory, carried by an HttpOnly cookie. A restart signs everybody out;
//! consoles then show the sign-in form again.

use anxin_core::{Staff, StaffRole};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie a console's session travels in.
pub const SESSION_COOKIE: &str = "anxin_session";

/// How long a session lasts without use: a night shift and then some.
pub const SESSION_IDLE: Duration = Duration::from_secs(14 * 60 * 60);

/// A signed-in member of staff, as consoles show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: StaffRole,
}

impl From<&Staff> for User {
    fn from(s: &Staff) -> Self {
        Self { id: s.id.clone(), name: s.name.clone(), role: s.role }
    }
}

/// An Argon2id PHC string for `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS has randomness");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a valid salt");
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("hashing cannot fail with defaults").to_string()
}

/// Whether `password` matches the PHC string `hash`. A malformed hash matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash no password matches, verified against when the user is unknown so that a wrong
/// name takes as long as a wrong password.
const NOBODY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bm9ib2R5bm9ib2R5bm9ib2R5$9mGqfHq8a3xJYqH0UO8y5Qz0r7aZ0Kc1o6d3bq6i2uA";

struct Session {
    user: User,
    last_used: Instant,
}

/// Who may sign in, and who is signed in.
pub struct Sessions {
    staff: HashMap<String, Staff>,
    live: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("staff", &self.staff.len()).finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new(staff: impl IntoIterator<Item = Staff>) -> Self {
        Self { staff: staff.into_iter().map(|s| (s.id.clone(), s)).collect(), live: Mutex::default() }
    }

    /// Everybody who may sign in, for consoles to put names to actors.
    pub fn staff(&self) -> Vec<User> {
        let mut all: Vec<User> = self.staff.values().map(User::from).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Checks a name and password (slow on purpose: run it off the async threads) and opens
    /// a session. Returns its token and the user.
    pub fn sign_in(&self, user: &str, password: &str) -> Option<(String, User)> {
        let staff = self.staff.get(user);
        let hash = staff.map_or(NOBODY, |s| s.password_hash.as_str());
        if !verify_password(password, hash) {
            return None;
        }
        let user = User::from(staff?);
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS has randomness");
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut live = self.live.lock().expect("sessions lock");
        live.retain(|_, s| s.last_used.elapsed() < SESSION_IDLE);
        live.insert(token.clone(), Session { user: user.clone(), last_used: Instant::now() });
        Some((token, user))
    }

    /// The user a session token belongs to, if it is live; using it keeps it alive.
    pub fn user(&self, token: &str) -> Option<User> {
        let mut live = self.live.lock().expect("sessions lock");
        let session = live.get_mut(token)?;
        if session.last_used.elapsed() >= SESSION_IDLE {
            live.remove(token);
            return None;
        }
        session.last_used = Instant::now();
        Some(session.user.clone())
    }

    pub fn sign_out(&self, token: &str) {
        self.live.lock().expect("sessions lock").remove(token);
    }
}

/// The session token in a `Cookie` header, if any.
pub fn session_token(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(id: &str, password: &str) -> Staff {
        Staff { id: id.into(), name: id.into(), role: StaffRole::Dispatcher, password_hash: hash_password(password) }
    }

    #[test]
    fn the_right_password_opens_a_session_and_nothing_else_does() {
        let sessions = Sessions::new([staff("wang", "night-shift")]);
        assert!(sessions.sign_in("wang", "wrong").is_none());
        assert!(sessions.sign_in("li", "night-shift").is_none(), "unknown user");
        let (token, user) = sessions.sign_in("wang", "night-shift").expect("signed in");
        assert_eq!(user.id, "wang");
        assert_eq!(sessions.user(&token), Some(user));
        assert_eq!(sessions.user("not-a-token"), None);
        sessions.sign_out(&token);
        assert_eq!(sessions.user(&token), None);
    }

    #[test]
    fn hashes_are_salted_and_malformed_ones_match_nothing() {
        let (a, b) = (hash_password("pw"), hash_password("pw"));
        assert_ne!(a, b, "a fresh salt each time");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("pw", &a) && verify_password("pw", &b));
        assert!(!verify_password("pw", "not a hash"));
        assert!(PasswordHash::new(NOBODY).is_ok(), "an unknown user costs a real verification");
        assert!(!verify_password("", NOBODY));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(session_token("a=1; anxin_session=abc; b=2"), Some("abc"));
        assert_eq!(session_token("anxin_session="), None);
        assert_eq!(session_token("other=1"), None);
    }
}
