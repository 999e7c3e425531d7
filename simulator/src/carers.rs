//! Carers on their rounds: each visits elders near their centre one after another, checks in
//! at the door (some first from a street away, which the engine must refuse), says "still
//! here" now and then, presses help now and then, and checks out; some forget to check out,
//! and the engine's lone-worker alarm must come. Only the carer's phone socket is used.

use crate::district::{District, Point};
use crate::plan::uniform;
use crate::scenario::Carers;
use crate::sim::{Clock, Ledger, Socket, VisitLog};
use anxin_proto::ws::{ClientFrame, ResultFrame, ServerFrame, VisitVerb};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::Message;

/// One visit as planned: whom, when (scenario seconds; the first check-in), how long, and
/// what goes wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedVisit {
    pub elder: usize,
    pub gap_s: f64,
    pub stay_s: f64,
    pub far: bool,
    pub still_here: bool,
    pub forget: bool,
    pub help: bool,
}

/// A carer's round for the run: `visits_each` visits to elders of their own centre.
pub fn round(c: &Carers, district: &District, carer: usize, seed: u64) -> Vec<PlannedVisit> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xca7e_0000 ^ (carer as u64).wrapping_mul(0x9e37_79b9));
    let centre = district.responders[carer].centre;
    let near: Vec<usize> = (0..district.elders.len()).filter(|&e| district.elders[e].own_centre == centre).collect();
    let pool: Vec<usize> = if near.is_empty() { (0..district.elders.len()).collect() } else { near };
    (0..c.visits_each)
        .map(|k| PlannedVisit {
            elder: pool[rng.random_range(0..pool.len())],
            // The first visit starts within the first gap, so that the carers do not all
            // knock at once.
            gap_s: if k == 0 {
                rng.random::<f64>() * c.between_min[1] * 60.0
            } else {
                uniform(&mut rng, c.between_min) * 60.0
            },
            stay_s: uniform(&mut rng, c.visit_min) * 60.0,
            far: rng.random::<f64>() < c.far_share,
            still_here: rng.random::<f64>() < c.still_here_share,
            forget: rng.random::<f64>() < c.forget_share,
            help: rng.random::<f64>() < c.help_share,
        })
        .collect()
}

/// The carer's phone: asks and waits for each answer. A reader keeps reading the socket
/// meanwhile, as a phone does, so that the engine's pings are answered (a socket silent too
/// long is closed) and its frames never pile up.
struct Phone {
    sink: futures_util::stream::SplitSink<Socket, Message>,
    results: mpsc::UnboundedReceiver<ResultFrame>,
    asked: u64,
}

/// What the engine answered: taken, or refused with its code.
type Answer = Result<(), String>;

impl Phone {
    fn new(socket: Socket, mut stop: watch::Receiver<bool>) -> Self {
        let (sink, mut stream) = socket.split();
        let (tx, results) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = stop.changed() => break,
                    m = stream.next() => m,
                };
                let Some(Ok(msg)) = msg else { break };
                let Message::Text(text) = msg else { continue };
                if let Ok(ServerFrame::Result(r)) = ServerFrame::from_json(text.as_str()) {
                    if tx.send(r).is_err() {
                        break;
                    }
                }
            }
        });
        Phone { sink, results, asked: 0 }
    }

    async fn ask(&mut self, action: VisitVerb, elder_id: Option<&str>, at: Point) -> Option<Answer> {
        self.asked += 1;
        let id = format!("k{}", self.asked);
        let frame = ClientFrame::Visit {
            action,
            elder_id: elder_id.map(str::to_string),
            lat: at.lat,
            lon: at.lon,
            accuracy_m: Some(10.0),
            request_id: Some(id.clone()),
        };
        self.sink.send(Message::Text(frame.to_json().into())).await.ok()?;
        let answer = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(r) = self.results.recv().await {
                if r.request_id.as_deref() == Some(id.as_str()) {
                    return Some(if r.ok { Ok(()) } else { Err(r.code.or(r.error).unwrap_or_default()) });
                }
            }
            None
        })
        .await;
        answer.ok().flatten()
    }
}

/// Plays one carer's round until the run stops.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    socket: Socket,
    carer: String,
    round: Vec<PlannedVisit>,
    district: Arc<District>,
    c: Carers,
    clock: Clock,
    end_s: f64,
    ledger: Arc<Mutex<Ledger>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut phone = Phone::new(socket, stop.clone());
    let script = async {
        let mut at_s = 0.0;
        let mut rng = SmallRng::seed_from_u64(carer.bytes().fold(7u64, |h, b| h.wrapping_mul(31) ^ u64::from(b)));
        for v in round {
            at_s += v.gap_s;
            if at_s >= end_s {
                break;
            }
            sleep_until(clock.at(at_s).into()).await;
            let elder = &district.elders[v.elder];
            let home = elder.home;
            let mut log =
                VisitLog { carer: carer.clone(), elder: v.elder, far: v.far, forgot: v.forget, ..Default::default() };
            let surprise = |what: String| {
                let mut l = ledger.lock().unwrap();
                if l.carer_surprises.len() < 20 {
                    l.carer_surprises.push(what);
                }
            };
            if v.far {
                // A street away: beyond the radius by 150 to 600 m.
                let off = c.checkin_radius_m + 150.0 + rng.random::<f64>() * 450.0;
                let angle = rng.random::<f64>() * std::f64::consts::TAU;
                let far = home.offset(off * angle.cos(), off * angle.sin());
                match phone.ask(VisitVerb::CheckIn, Some(&elder.id), far).await {
                    Some(Err(code)) if code == "out_of_radius" => log.far_refused = true,
                    Some(Ok(())) => surprise(format!(
                        "{carer}: a check-in {:.0} m from {}'s home was taken (radius {} m)",
                        far.distance_m(home),
                        elder.id,
                        c.checkin_radius_m
                    )),
                    other => surprise(format!("{carer}: a far check-in was answered {other:?}, not out_of_radius")),
                }
                // They walk to the door.
                at_s += 30.0 + rng.random::<f64>() * 60.0;
                sleep_until(clock.at(at_s).into()).await;
            }
            let door = home.offset(rng.random::<f64>() * 20.0 - 10.0, rng.random::<f64>() * 20.0 - 10.0);
            // The engine hears each word at or after it is sent: its timers run from then.
            let sent = anxin_proto::wall_clock_now().millis();
            match phone.ask(VisitVerb::CheckIn, Some(&elder.id), door).await {
                Some(Ok(())) => {
                    log.checked_in_ms = Some(sent);
                    log.last_heard_ms = Some(sent);
                }
                other => {
                    surprise(format!("{carer}: the check-in at {}'s door was answered {other:?}", elder.id));
                    ledger.lock().unwrap().visits.push(log);
                    continue;
                }
            }
            let index = {
                let mut l = ledger.lock().unwrap();
                l.visits.push(log);
                l.visits.len() - 1
            };
            let start_s = clock.scenario_s(std::time::Instant::now());
            if v.still_here || v.help {
                sleep_until(clock.at(start_s + v.stay_s / 2.0).into()).await;
            }
            if v.still_here {
                let sent = anxin_proto::wall_clock_now().millis();
                match phone.ask(VisitVerb::StillHere, None, door).await {
                    Some(Ok(())) => {
                        let mut l = ledger.lock().unwrap();
                        l.visits[index].still_here = true;
                        l.visits[index].last_heard_ms = Some(sent);
                    }
                    other => surprise(format!("{carer}: still here was answered {other:?}")),
                }
            }
            if v.help {
                let sent = anxin_proto::wall_clock_now().millis();
                match phone.ask(VisitVerb::Help, None, door).await {
                    Some(Ok(())) => ledger.lock().unwrap().visits[index].help_ms = Some(sent),
                    other => surprise(format!("{carer}: help was answered {other:?}")),
                }
            }
            // Forgetting: they leave without a word and check out once phoned, late.
            let out_s = if v.forget {
                let heard = clock.scenario_s(std::time::Instant::now());
                heard + c.visit_max_min * 60.0 + c.late_min * 60.0
            } else {
                start_s + v.stay_s
            };
            sleep_until(clock.at(out_s).into()).await;
            match phone.ask(VisitVerb::CheckOut, None, door).await {
                Some(Ok(())) => {
                    ledger.lock().unwrap().visits[index].checked_out_ms = Some(anxin_proto::wall_clock_now().millis())
                }
                other => surprise(format!("{carer}: the check-out was answered {other:?}")),
            }
            at_s = clock.scenario_s(std::time::Instant::now());
        }
        // Done for the day: keep the socket open until the run ends.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = stop.changed() => {}
        _ = script => {}
    }
}
