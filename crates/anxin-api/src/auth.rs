//! Dispatchers' and supervisors' sign-in: Argon2id password hashes kept in the registry, and
//! sessions carried by an HttpOnly cookie. Sessions are kept in a [`SessionBook`] (the store,
//! in anxind) so that any node knows a console's cookie and a restart signs nobody out; each
//! node keeps the sessions it has seen in memory and asks the book again at most every
//! [`RECHECK`]. Without a book (tests, tools) they live in memory only.

use crate::commands::token_sha256 as sha256_hex;
use anxin_core::{Staff, Timestamp};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The cookie a console's session travels in.
pub const SESSION_COOKIE: &str = "anxin_session";

/// How long a session lasts without use: a night shift and then some.
pub const SESSION_IDLE: Duration = Duration::from_secs(14 * 60 * 60);

/// How long a node trusts what it last read of a session before reading it again: a sign-out
/// or a change of role or password on another node reaches this one within it.
pub const RECHECK: Duration = Duration::from_secs(10);

/// How often a session's last use is written to the book (idleness is counted in hours).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A signed-in member of staff, as consoles show them.
pub use anxin_proto::rest::User;

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

/// What a session is bound to of its member of staff: their role and password hash. A
/// session whose key is no longer theirs has ended, on whichever node learns of the change.
pub fn staff_key(staff: &Staff) -> String {
    sha256_hex(&format!("{}\n{}", staff.role.as_str(), staff.password_hash))
}

/// [`SESSION_IDLE`] in milliseconds, for the wall-clock times kept in the book.
const SESSION_IDLE_MS: i64 = SESSION_IDLE.as_millis() as i64;

use anxin_proto::wall_clock_now as now;

/// A session as a [`SessionBook`] keeps it: never the token, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptSession {
    /// SHA-256 of the token, lowercase hex.
    pub token_sha256: String,
    pub staff_id: String,
    /// [`staff_key`] when it opened.
    pub staff_key: String,
    pub opened_at: Timestamp,
    pub used_at: Timestamp,
}

/// Where sessions are kept beyond one process: the store, in anxind. Errors are the store's,
/// as text for the log.
pub trait SessionBook: Send + Sync {
    fn open(&self, session: KeptSession) -> BoxFuture<'_, Result<(), String>>;
    /// The session with this token hash, if it has not been closed.
    fn find(&self, token_sha256: String) -> BoxFuture<'_, Result<Option<KeptSession>, String>>;
    fn touch(&self, token_sha256: String, at: Timestamp) -> BoxFuture<'_, Result<(), String>>;
    fn close(&self, token_sha256: String) -> BoxFuture<'_, Result<(), String>>;
    /// Deletes sessions last used before `before`.
    fn forget_idle(&self, before: Timestamp) -> BoxFuture<'_, Result<u64, String>>;
}

/// Why a session could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the session could not be kept: {0}")]
pub struct NotKept(pub String);

/// What this node knows of a session.
struct Known {
    user: User,
    /// When this node last read it from the book (or opened it).
    checked: Instant,
    /// Last use, and when that was last written to the book.
    used: Instant,
    written: Instant,
}

/// Who may sign in, and who has.
pub struct Sessions {
    /// Who may sign in: from the ledger at start, then kept up to date by its changes.
    staff: std::sync::RwLock<HashMap<String, Staff>>,
    /// By token hash.
    known: Mutex<HashMap<String, Known>>,
    book: Option<Arc<dyn SessionBook>>,
    recheck: Duration,
    /// Staff whose sessions the ledger ended: their open consoles close.
    ended: tokio::sync::broadcast::Sender<String>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").field("kept", &self.book.is_some()).finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions in this process's memory only: a restart signs everybody out.
    pub fn new(staff: impl IntoIterator<Item = Staff>) -> Self {
        let staff = staff.into_iter().map(|s| (s.id.clone(), s)).collect();
        let (ended, _) = tokio::sync::broadcast::channel(64);
        Self { staff: std::sync::RwLock::new(staff), known: Mutex::default(), book: None, recheck: RECHECK, ended }
    }

    /// The same, keeping sessions in `book`, where every node finds them.
    pub fn kept_in(mut self, book: Arc<dyn SessionBook>) -> Self {
        self.book = Some(book);
        self
    }

    /// How long this node trusts what it last read of a session ([`RECHECK`] unless set).
    pub fn recheck_every(mut self, recheck: Duration) -> Self {
        self.recheck = recheck;
        self
    }

    /// Tells of staff whose sessions the ledger ended, so their open consoles close.
    pub fn ended(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.ended.subscribe()
    }

    /// A member of staff added or changed in the ledger. A change of role or password signs
    /// out their open sessions (a new name is taken at once); kept sessions end too, their
    /// [`staff_key`] no longer being the member's.
    pub fn set_staff(&self, staff: Staff) {
        let before = self.staff.write().expect("staff lock").insert(staff.id.clone(), staff.clone());
        let mut known = self.known.lock().expect("sessions lock");
        match before {
            Some(b) if b.role != staff.role || b.password_hash != staff.password_hash => {
                known.retain(|_, s| s.user.id != staff.id);
                let _ = self.ended.send(staff.id.clone());
            }
            _ => known.values_mut().filter(|s| s.user.id == staff.id).for_each(|s| s.user.name = staff.name.clone()),
        }
    }

    /// Everybody who may sign in, as the ledger says now: each added or changed as by
    /// [`Sessions::set_staff`], and anyone no longer in it removed.
    pub fn set_all_staff(&self, staff: Vec<Staff>) {
        let keep: std::collections::HashSet<String> = staff.iter().map(|s| s.id.clone()).collect();
        let gone: Vec<String> =
            self.staff.read().expect("staff lock").keys().filter(|id| !keep.contains(*id)).cloned().collect();
        for id in gone {
            self.remove_staff(&id);
        }
        for s in staff {
            let same = self.staff.read().expect("staff lock").get(&s.id) == Some(&s);
            if !same {
                self.set_staff(s);
            }
        }
    }

    /// A member of staff retired: they cannot sign in, and their sessions end now.
    pub fn remove_staff(&self, id: &str) {
        self.staff.write().expect("staff lock").remove(id);
        self.known.lock().expect("sessions lock").retain(|_, s| s.user.id != id);
        let _ = self.ended.send(id.to_string());
    }

    /// Everybody who may sign in, for consoles to put names to actors.
    pub fn staff(&self) -> Vec<User> {
        let mut all: Vec<User> = self.staff.read().expect("staff lock").values().map(User::from).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Checks a name and password: the user, if they match. Slow on purpose: run it off the
    /// async threads, then [`Sessions::open`] a session.
    pub fn check(&self, user: &str, password: &str) -> Option<User> {
        let staff = self.staff.read().expect("staff lock").get(user).cloned();
        let hash = staff.as_ref().map_or(NOBODY, |s| s.password_hash.as_str());
        if !verify_password(password, hash) {
            return None;
        }
        Some(User::from(&staff?))
    }

    /// Opens a session for a user [`Sessions::check`] let in, kept in the book before its
    /// token is given out. Returns the token.
    pub async fn open(&self, user: &User) -> Result<String, NotKept> {
        let key = {
            let staff = self.staff.read().expect("staff lock");
            staff.get(&user.id).map(staff_key).ok_or_else(|| NotKept(format!("{} is not on the staff", user.id)))?
        };
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS has randomness");
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let hash = sha256_hex(&token);
        if let Some(book) = &self.book {
            let at = now();
            // Ended sessions are deleted as new ones open: a sign-in is rare enough.
            if let Err(e) = book.forget_idle(Timestamp(at.0.saturating_sub(SESSION_IDLE_MS))).await {
                tracing::warn!(error = %e, "ended staff sessions could not be deleted");
            }
            let kept = KeptSession {
                token_sha256: hash.clone(),
                staff_id: user.id.clone(),
                staff_key: key.clone(),
                opened_at: at,
                used_at: at,
            };
            book.open(kept).await.map_err(NotKept)?;
        }
        let now = Instant::now();
        let mut known = self.known.lock().expect("sessions lock");
        known.retain(|_, s| s.used.elapsed() < SESSION_IDLE);
        known.insert(hash, Known { user: user.clone(), checked: now, used: now, written: now });
        Ok(token)
    }

    /// The user a session token belongs to, if it is live; using it keeps it alive. A
    /// session this node has not seen, or not for [`RECHECK`], is read from the book; if the
    /// book cannot be read, what this node knew stands (a store outage signs nobody out).
    pub async fn user(&self, token: &str) -> Option<User> {
        let hash = sha256_hex(token);
        let (fresh, touch) = {
            let mut known = self.known.lock().expect("sessions lock");
            match known.get_mut(&hash) {
                Some(s) if s.used.elapsed() >= SESSION_IDLE => {
                    known.remove(&hash);
                    (None, false)
                }
                Some(s) => {
                    s.used = Instant::now();
                    let touch = s.written.elapsed() >= TOUCH_EVERY;
                    if touch {
                        s.written = Instant::now();
                    }
                    let fresh = self.book.is_none() || s.checked.elapsed() < self.recheck;
                    (fresh.then(|| s.user.clone()), touch)
                }
                None if self.book.is_none() => return None,
                None => (None, false),
            }
        };
        let Some(book) = &self.book else { return fresh };
        if touch {
            if let Err(e) = book.touch(hash.clone(), now()).await {
                tracing::warn!(error = %e, "a staff session's use could not be written");
            }
        }
        if fresh.is_some() {
            return fresh;
        }
        match book.find(hash.clone()).await {
            Ok(found) => self.known_from(hash, found),
            Err(e) => {
                tracing::warn!(error = %e, "staff sessions could not be read; trusting what this node knew");
                self.known.lock().expect("sessions lock").get(&hash).map(|s| s.user.clone())
            }
        }
    }

    /// What the book said of a session, checked against the staff as this node knows them.
    fn known_from(&self, hash: String, found: Option<KeptSession>) -> Option<User> {
        let mut known = self.known.lock().expect("sessions lock");
        let live = found.filter(|k| now().0.saturating_sub(k.used_at.0) < SESSION_IDLE_MS).and_then(|k| {
            let staff = self.staff.read().expect("staff lock");
            let member = staff.get(&k.staff_id).filter(|m| staff_key(m) == k.staff_key)?;
            Some(User::from(member))
        });
        let Some(user) = live else {
            known.remove(&hash);
            return None;
        };
        let now = Instant::now();
        let entry = known.entry(hash).or_insert(Known { user: user.clone(), checked: now, used: now, written: now });
        entry.user = user.clone();
        entry.checked = now;
        Some(user)
    }

    /// Ends a session, on every node (each within [`RECHECK`]).
    pub async fn sign_out(&self, token: &str) {
        let hash = sha256_hex(token);
        self.known.lock().expect("sessions lock").remove(&hash);
        if let Some(book) = &self.book {
            if let Err(e) = book.close(hash).await {
                tracing::warn!(error = %e, "a staff session could not be closed in the store");
            }
        }
    }
}

/// Wrong passwords one address may try for one user name before it must wait.
pub const FREE_TRIES: u32 = 5;
/// The first wait after that; each further failure doubles it, up to [`LONGEST_WAIT`].
pub const FIRST_WAIT: Duration = Duration::from_secs(30);
pub const LONGEST_WAIT: Duration = Duration::from_secs(5 * 60);
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(30 * 60);
/// Most (address, user name) pairs remembered; past it, the oldest are forgotten first.
const MOST_TRACKED: usize = 50_000;

/// Slows password guessing. Failures are counted per address *and* user name, so that
/// someone guessing a dispatcher's password from one place cannot lock that dispatcher out
/// at their own desk: after [`FREE_TRIES`] wrong passwords in a row, that pair waits
/// [`FIRST_WAIT`], doubling with each further failure up to [`LONGEST_WAIT`]. A right
/// password clears the count. A wait, not a lockout: a dispatcher who mistyped can always
/// get in again within minutes, which a 24-hour centre needs.
#[derive(Debug, Default)]
pub struct SignInLimiter {
    strikes: Mutex<HashMap<(IpAddr, String), Strikes>>,
}

#[derive(Debug, Clone, Copy)]
struct Strikes {
    failures: u32,
    last: Instant,
    wait_until: Option<Instant>,
}

impl SignInLimiter {
    /// `Err(how long to wait)` if this address must not try this user name yet.
    pub fn check(&self, from: IpAddr, user: &str, now: Instant) -> Result<(), Duration> {
        let strikes = self.strikes.lock().expect("sign-in limiter lock");
        match strikes.get(&(from, key(user))).and_then(|s| s.wait_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// A wrong password: counts it, and returns the wait it now imposes, if any.
    pub fn failed(&self, from: IpAddr, user: &str, now: Instant) -> Option<Duration> {
        let mut strikes = self.strikes.lock().expect("sign-in limiter lock");
        if strikes.len() >= MOST_TRACKED {
            strikes.retain(|_, s| now.saturating_duration_since(s.last) < FORGET_AFTER);
            if strikes.len() >= MOST_TRACKED {
                let mut ages: Vec<Instant> = strikes.values().map(|s| s.last).collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                strikes.retain(|_, s| s.last > cutoff);
            }
        }
        let entry = strikes.entry((from, key(user))).or_insert(Strikes { failures: 0, last: now, wait_until: None });
        if now.saturating_duration_since(entry.last) >= FORGET_AFTER {
            *entry = Strikes { failures: 0, last: now, wait_until: None };
        }
        entry.failures += 1;
        entry.last = now;
        let over = entry.failures.checked_sub(FREE_TRIES)?;
        let wait = FIRST_WAIT.saturating_mul(1 << over.min(16)).min(LONGEST_WAIT);
        entry.wait_until = Some(now + wait);
        Some(wait)
    }

    /// The right password: this pair starts again from nothing.
    pub fn succeeded(&self, from: IpAddr, user: &str) {
        self.strikes.lock().expect("sign-in limiter lock").remove(&(from, key(user)));
    }
}

/// User names are counted as typed, cut to a bounded length (a long name is wrong anyway).
fn key(user: &str) -> String {
    user.chars().take(64).collect()
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
    use anxin_core::StaffRole;

    fn staff(id: &str, password: &str) -> Staff {
        Staff { id: id.into(), name: id.into(), role: StaffRole::Dispatcher, password_hash: hash_password(password) }
    }

    #[tokio::test]
    async fn the_right_password_opens_a_session_and_nothing_else_does() {
        let sessions = Sessions::new([staff("wang", "night-shift")]);
        assert!(sessions.check("wang", "wrong").is_none());
        assert!(sessions.check("li", "night-shift").is_none(), "unknown user");
        let user = sessions.check("wang", "night-shift").expect("signed in");
        assert_eq!(user.id, "wang");
        let token = sessions.open(&user).await.expect("opened");
        assert_eq!(sessions.user(&token).await, Some(user));
        assert_eq!(sessions.user("not-a-token").await, None);
        sessions.sign_out(&token).await;
        assert_eq!(sessions.user(&token).await, None);
    }

    #[test]
    fn a_change_of_role_or_password_changes_the_key_a_change_of_name_does_not() {
        let wang = staff("wang", "night-shift");
        let renamed = Staff { name: "Wang Fang".into(), ..wang.clone() };
        let promoted = Staff { role: StaffRole::Supervisor, ..wang.clone() };
        let new_password = Staff { password_hash: hash_password("day-shift"), ..wang.clone() };
        assert_eq!(staff_key(&wang), staff_key(&renamed));
        assert_ne!(staff_key(&wang), staff_key(&promoted));
        assert_ne!(staff_key(&wang), staff_key(&new_password));
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
    fn guessing_waits_longer_each_time_and_only_for_that_address_and_name() {
        let limiter = SignInLimiter::default();
        let (here, there) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for n in 1..FREE_TRIES {
            assert_eq!(limiter.failed(here, "wang", t0), None, "try {n} is free");
        }
        assert_eq!(limiter.failed(here, "wang", t0), Some(FIRST_WAIT));
        assert_eq!(limiter.check(here, "wang", t0 + Duration::from_secs(10)), Err(Duration::from_secs(20)));
        assert_eq!(limiter.check(there, "wang", t0), Ok(()), "the dispatcher at another desk");
        assert_eq!(limiter.check(here, "li", t0), Ok(()), "another name from the same place");
        let later = t0 + FIRST_WAIT;
        assert_eq!(limiter.check(here, "wang", later), Ok(()));
        assert_eq!(limiter.failed(here, "wang", later), Some(FIRST_WAIT * 2));
        let mut wait = FIRST_WAIT * 2;
        for _ in 0..10 {
            wait = limiter.failed(here, "wang", later).unwrap();
        }
        assert_eq!(wait, LONGEST_WAIT, "capped");
        limiter.succeeded(here, "wang");
        assert_eq!(limiter.check(here, "wang", later), Ok(()));
        assert_eq!(limiter.failed(here, "wang", later), None, "counted from nothing again");
        // Failures long ago are forgotten.
        for _ in 0..FREE_TRIES - 1 {
            limiter.failed(there, "li", t0);
        }
        assert_eq!(limiter.failed(there, "li", t0 + FORGET_AFTER), None);
    }

    #[test]
    fn the_limiter_forgets_the_oldest_when_full() {
        let limiter = SignInLimiter::default();
        let t0 = Instant::now();
        for n in 0..MOST_TRACKED + 10 {
            let from = IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
            limiter.failed(from, "wang", t0 + Duration::from_millis(n as u64));
        }
        assert!(limiter.strikes.lock().unwrap().len() <= MOST_TRACKED);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(session_token("a=1; anxin_session=abc; b=2"), Some("abc"));
        assert_eq!(session_token("anxin_session="), None);
        assert_eq!(session_token("other=1"), None);
    }
}
