//! The elders' families: who they are (drawn with the district), how each answers when the
//! engine tells them of an emergency (drawn from the seed), and the play: a contact told on
//! the console answers after their delay through the family page's own API (a link issued on
//! a supervisor's console, `POST /api/v1/family/session`, the family socket `/ws?family=1`).

use crate::district::gaussian;
use crate::plan::uniform;
use crate::scenario::Families;
use crate::sim::{connect_with_cookie, post_for_cookie, Clock, Ledger, Socket};
use anxin_core::Channel;
use anxin_proto::family::{FamilySignIn, LinkAction};
use anxin_proto::ws::{AnswerVerb, ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::Message;

/// One of an elder's contacts, as the registry lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// `c1`, `c2`...: the order they are told in.
    pub id: String,
    pub name: String,
    pub relation: String,
    pub phone: String,
    pub channel: Channel,
}

const RELATIONS: [&str; 6] = ["女儿", "儿子", "儿媳", "女婿", "邻居", "侄女"];

/// An elder's contacts, drawn from `rng` by the scenario's shares. `elder_no` (the number in
/// the elder's id) makes the names and phone numbers.
pub fn contacts(f: &Families, rng: &mut SmallRng, elder_no: u32) -> Vec<Contact> {
    let count = crate::district::weighted(rng, &cumulative(&f.contacts_shares));
    let channels = cumulative(&[f.channels.sms, f.channels.voice, f.channels.push]);
    (0..count)
        .map(|k| Contact {
            id: format!("c{}", k + 1),
            name: format!("家属 {elder_no:06}-{}", k + 1),
            relation: RELATIONS[rng.random_range(0..RELATIONS.len())].to_string(),
            // 139 and eight digits: the elder's number and the contact's place, never a real line.
            phone: format!("139{:06}{:02}", elder_no % 1_000_000, k + 1),
            channel: [Channel::Sms, Channel::Voice, Channel::Push][crate::district::weighted(rng, &channels)],
        })
        .collect()
}

fn cumulative(weights: &[f64]) -> Vec<f64> {
    crate::district::cumulative(weights.iter().copied())
}

/// What a contact does the `nth` time (from 1) they are told of one of their elder's
/// emergencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reply {
    /// The phone stays in the pocket.
    Never,
    /// They answer `answer` after `delay_s` scenario seconds; `eta_min` with `going`.
    After { delay_s: f64, answer: AnswerVerb, eta_min: Option<u32> },
}

impl Reply {
    /// The reply of contact `contact` (0-based) of elder `elder` (index in the district), the
    /// `nth` time they are told: the same seed gives the same reply, whatever order the run
    /// tells them in.
    pub fn draw(f: &Families, seed: u64, elder: usize, contact: usize, nth: u32) -> Reply {
        let mix = seed
            ^ 0x0fa3_11e5_u64.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (elder as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9)
            ^ ((contact as u64) << 48)
            ^ (u64::from(nth) << 56).rotate_left(7);
        let mut rng = SmallRng::seed_from_u64(mix);
        if rng.random::<f64>() >= f.answer_share {
            return Reply::Never;
        }
        let delay_s = answer_delay_s(f, &mut rng);
        let a = &f.answers;
        let answers = cumulative(&[a.seen, a.going, a.fine, a.cannot_help]);
        let answer = [AnswerVerb::Seen, AnswerVerb::Going, AnswerVerb::Fine, AnswerVerb::CannotHelp]
            [crate::district::weighted(&mut rng, &answers)];
        let eta_min = (answer == AnswerVerb::Going).then(|| uniform(&mut rng, f.going_eta_min).round().max(1.0) as u32);
        Reply::After { delay_s, answer, eta_min }
    }
}

/// A delay from being told to answering: log-normal with the scenario's median and spread,
/// clipped.
pub fn answer_delay_s(f: &Families, rng: &mut SmallRng) -> f64 {
    let d = f.answer_median_s * (f.answer_spread * gaussian(rng)).exp();
    d.clamp(f.answer_clip_s[0], f.answer_clip_s[1])
}

/// A contact the console showed told on an incident for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    pub incident: u64,
    /// Index of the elder (their device) in the district.
    pub device: usize,
    pub contact_id: String,
}

/// The family side of a district: each elder's id and contacts' ids, by device index.
#[derive(Debug, Clone)]
pub struct Roll {
    pub elders: Vec<(String, Vec<String>)>,
}

/// Answers open at once: each is a sign-in and a family socket, open until its result.
pub const MAX_OPEN_ANSWERS: usize = 16;

/// An answer to send when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Due {
    /// When the contact answers: the lag from here to the engine's result is the simulator's
    /// and the engine's, not the contact's.
    at: Instant,
    incident: u64,
    device: usize,
    contact: usize,
    answer: AnswerVerb,
    eta_min: Option<u32>,
}

/// A contact's link: being issued (with the answers waiting for it), or its token.
enum Link {
    Asked(Vec<Due>),
    Token(String),
}

/// Where the families meet the engine.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub http: SocketAddr,
    /// `ws://HOST:PORT/ws`.
    pub ws_base: String,
}

/// The families: told contacts come in on `told`; each who will answer does after their
/// delay, through a link the simulator's supervisor issues on `console` (once per contact).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    console: Socket,
    mut told: mpsc::Receiver<Told>,
    roll: Arc<Roll>,
    families: Families,
    seed: u64,
    endpoints: Endpoints,
    ledger: Arc<Mutex<Ledger>>,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    let (mut sink, mut stream) = console.split();
    // (when, order of planning) earliest first, and the answer planned under that order.
    let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut planned: HashMap<u64, Due> = HashMap::new();
    let mut order = 0u64;
    let mut times_told: HashMap<(usize, usize), u32> = HashMap::new();
    let mut links: HashMap<(usize, usize), Link> = HashMap::new();
    let mut asked: HashMap<String, (usize, usize)> = HashMap::new();
    let mut request = 0u64;
    let open = Arc::new(Semaphore::new(MAX_OPEN_ANSWERS));
    let mut answering = JoinSet::new();
    let answer = |d: Due, token: String, answering: &mut JoinSet<()>| {
        let (open, ledger, endpoints) = (open.clone(), ledger.clone(), endpoints.clone());
        answering.spawn(async move {
            let Ok(_permit) = open.acquire_owned().await else { return };
            let outcome = send_answer(&endpoints, &token, d.incident, d.answer, d.eta_min).await;
            let lag_ms = d.at.elapsed().as_secs_f64() * 1000.0;
            ledger.lock().unwrap().family_answer(outcome, lag_ms);
        });
    };
    loop {
        let wake = due.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            _ = stop.changed() => break,
            t = told.recv() => {
                let Some(t) = t else { break };
                let Some(contact) = roll.elders.get(t.device).and_then(|(_, c)| c.iter().position(|id| *id == t.contact_id)) else {
                    continue;
                };
                let nth = times_told.entry((t.device, contact)).or_default();
                *nth += 1;
                if let Reply::After { delay_s, answer, eta_min } = Reply::draw(&families, seed, t.device, contact, *nth) {
                    order += 1;
                    let at = Instant::now() + clock.wall(delay_s);
                    due.push(Reverse((at, order)));
                    planned.insert(order, Due { at, incident: t.incident, device: t.device, contact, answer, eta_min });
                }
            }
            _ = async { match wake { Some(t) => sleep_until(t.into()).await, None => std::future::pending().await } } => {
                let Reverse((_, planned_as)) = due.pop().expect("peeked");
                let d = planned.remove(&planned_as).expect("planned with its time");
                let key = (d.device, d.contact);
                match links.get_mut(&key) {
                    Some(Link::Token(token)) => answer(d, token.clone(), &mut answering),
                    Some(Link::Asked(waiting)) => waiting.push(d),
                    None => {
                        let (elder_id, contacts) = &roll.elders[d.device];
                        request += 1;
                        let request_id = format!("f{request}");
                        let frame = ClientFrame::FamilyLink {
                            elder_id: elder_id.clone(),
                            contact_id: contacts[d.contact].clone(),
                            action: LinkAction::Issue,
                            request_id: Some(request_id.clone()),
                        };
                        asked.insert(request_id, key);
                        links.insert(key, Link::Asked(vec![d]));
                        if sink.send(Message::Text(frame.to_json().into())).await.is_err() {
                            break;
                        }
                    }
                }
            }
            m = stream.next() => {
                let Some(Ok(msg)) = m else { break };
                let Message::Text(text) = msg else { continue };
                let Ok(ServerFrame::Result(result)) = ServerFrame::from_json(text.as_str()) else { continue };
                let Some(key) = result.request_id.as_deref().and_then(|r| asked.remove(r)) else { continue };
                let Some(Link::Asked(waiting)) = links.remove(&key) else { continue };
                let token = result.link.as_ref().and_then(|l| l.path.split_once("#t=")).map(|(_, t)| t.to_string());
                match token {
                    Some(token) => {
                        ledger.lock().unwrap().family_links_issued += 1;
                        for d in waiting {
                            answer(d, token.clone(), &mut answering);
                        }
                        links.insert(key, Link::Token(token));
                    }
                    None => {
                        // The next answer due for this contact asks again.
                        let why = result.error.unwrap_or_else(|| "no link in the result".into());
                        let mut l = ledger.lock().unwrap();
                        for _ in waiting {
                            l.family_answer(AnswerOutcome::Failed(format!("family_link: {why}")), 0.0);
                        }
                    }
                }
            }
        }
    }
    // The run is over: answers under way get a moment, then stop.
    let _ =
        tokio::time::timeout(Duration::from_secs(5), async { while answering.join_next().await.is_some() {} }).await;
    answering.abort_all();
}

/// What became of one family answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerOutcome {
    /// The engine took it.
    Taken,
    /// Refused because the incident had ended meanwhile (`incident_not_open`): normal.
    Ended,
    /// Refused for another reason (the code and words).
    Refused(String),
    /// Could not be sent: sign-in or the socket failed.
    Failed(String),
}

/// One family member's answer, start to end: sign in with the link's token, open the
/// family socket, wait for its welcome, send the answer, read its result, close.
async fn send_answer(
    endpoints: &Endpoints,
    token: &str,
    incident_id: u64,
    answer: AnswerVerb,
    eta_min: Option<u32>,
) -> AnswerOutcome {
    let body = serde_json::to_string(&FamilySignIn { token: token.to_string() }).expect("plain data");
    let cookie = match post_for_cookie(endpoints.http, "/api/v1/family/session", &body, "anxin_family").await {
        Ok((_, Some(cookie))) => cookie,
        Ok((status, None)) => return AnswerOutcome::Failed(format!("family sign-in: HTTP {status}")),
        Err(e) => return AnswerOutcome::Failed(format!("family sign-in: {e}")),
    };
    let url = format!("{}?family=1", endpoints.ws_base);
    let socket = match connect_with_cookie(&url, &cookie).await {
        Ok((socket, _)) => socket,
        Err(e) => return AnswerOutcome::Failed(format!("family socket: {e}")),
    };
    let (mut sink, mut stream) = socket.split();
    let exchange = async {
        let mut sent = false;
        while let Some(Ok(msg)) = stream.next().await {
            let Message::Text(text) = msg else { continue };
            match ServerFrame::from_json(text.as_str()) {
                Ok(ServerFrame::FamilyWelcome { .. }) if !sent => {
                    sent = true;
                    let frame =
                        ClientFrame::FamilyAnswer { incident_id, answer, eta_min, request_id: Some("a1".into()) };
                    if sink.send(Message::Text(frame.to_json().into())).await.is_err() {
                        return AnswerOutcome::Failed("family socket closed before the answer".into());
                    }
                }
                Ok(ServerFrame::Result(r)) if r.request_id.as_deref() == Some("a1") => {
                    return match (r.ok, r.code.as_deref()) {
                        (true, _) => AnswerOutcome::Taken,
                        (false, Some("incident_not_open")) => AnswerOutcome::Ended,
                        (false, code) => AnswerOutcome::Refused(format!(
                            "{}: {}",
                            code.unwrap_or("?"),
                            r.error.as_deref().unwrap_or("?")
                        )),
                    };
                }
                _ => {}
            }
        }
        AnswerOutcome::Failed("family socket closed before the result".into())
    };
    let outcome = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| AnswerOutcome::Failed("no result within 10 s".into()));
    let _ = sink.send(Message::Close(None)).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn families() -> Families {
        Families::default()
    }

    #[test]
    fn the_same_seed_gives_the_same_contacts_and_replies() {
        let s = Scenario::parse(include_str!("../scenarios/smoke.toml"), "smoke").unwrap();
        let (a, b) = (crate::district::District::generate(&s), crate::district::District::generate(&s));
        let contacts = |d: &crate::district::District| d.elders.iter().map(|e| e.contacts.clone()).collect::<Vec<_>>();
        assert_eq!(contacts(&a), contacts(&b));
        assert!(a.elders.iter().any(|e| e.contacts.len() >= 2), "some elders have several contacts");
        let f = &s.families;
        for elder in 0..50 {
            for contact in 0..3 {
                for nth in 1..3 {
                    assert_eq!(Reply::draw(f, 7, elder, contact, nth), Reply::draw(f, 7, elder, contact, nth));
                }
            }
        }
        let replies = |seed| (0..200).map(|e| Reply::draw(f, seed, e, 0, 1)).collect::<Vec<_>>();
        assert_ne!(replies(7), replies(8), "another seed, other replies");
        assert_ne!(Reply::draw(f, 7, 3, 0, 1), Reply::draw(f, 7, 3, 0, 2), "each time told is its own draw");
    }

    #[test]
    fn contact_counts_follow_the_shares() {
        let f = families();
        let mut rng = SmallRng::seed_from_u64(11);
        let n = 20_000;
        let mut counts = [0usize; 4];
        for i in 0..n {
            let c = contacts(&f, &mut rng, i);
            counts[c.len()] += 1;
            assert!(c.iter().enumerate().all(|(k, c)| c.id == format!("c{}", k + 1)));
        }
        let total: f64 = f.contacts_shares.iter().sum();
        for (k, count) in counts.iter().enumerate() {
            let expected = f.contacts_shares[k] / total;
            let got = *count as f64 / f64::from(n);
            // Four standard errors of a share of 20,000 draws is below 0.015.
            assert!((got - expected).abs() < 0.015, "{k} contacts: {got} against {expected}");
        }
    }

    #[test]
    fn the_delay_median_is_the_configured_one() {
        let mut f = families();
        f.answer_clip_s = [0.0, 1e9];
        let mut rng = SmallRng::seed_from_u64(3);
        let n = 10_000;
        let mut d: Vec<f64> = (0..n).map(|_| answer_delay_s(&f, &mut rng)).collect();
        d.sort_by(f64::total_cmp);
        let median = d[n / 2];
        // The sample median's standard error is sqrt(pi/2) * spread / sqrt(n) in log terms:
        // 1.25% at spread 1 and n = 10,000; allow four of them.
        let error = (median / f.answer_median_s).ln().abs();
        assert!(error < 4.0 * 1.2533 * f.answer_spread / (n as f64).sqrt(), "median {median}");
        // The clip holds.
        let f = families();
        let clipped: Vec<f64> = (0..n).map(|_| answer_delay_s(&f, &mut rng)).collect();
        assert!(clipped.iter().all(|d| (f.answer_clip_s[0]..=f.answer_clip_s[1]).contains(d)));
        // Of those who answer, most within a few minutes: the defaults put ~82% within 5 min.
        let within_5 = clipped.iter().filter(|d| **d <= 300.0).count() as f64 / n as f64;
        assert!((0.78..0.86).contains(&within_5), "{within_5}");
    }

    #[test]
    fn replies_follow_the_answer_share_and_mix() {
        let f = families();
        let n = 20_000;
        let replies: Vec<Reply> = (0..n).map(|e| Reply::draw(&f, 5, e, 0, 1)).collect();
        let answered = replies.iter().filter(|r| matches!(r, Reply::After { .. })).count() as f64 / n as f64;
        assert!((answered - f.answer_share).abs() < 0.015, "{answered}");
        let going: Vec<u32> = replies
            .iter()
            .filter_map(|r| match r {
                Reply::After { answer: AnswerVerb::Going, eta_min, .. } => *eta_min,
                _ => None,
            })
            .collect();
        assert!(!going.is_empty());
        assert!(going.iter().all(|m| (10..=60).contains(m)), "ETAs within going_eta_min");
        let fine = replies.iter().filter(|r| matches!(r, Reply::After { answer: AnswerVerb::Fine, .. })).count();
        let expected = n as f64 * f.answer_share * 0.2;
        assert!((fine as f64 - expected).abs() < 0.1 * expected, "{fine} fine, expected about {expected}");
    }
}
