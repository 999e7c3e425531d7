//! The ledger changed live: elders, devices, stations, responders and staff created, updated
//! and retired through the engine, which checks each change against what is live (open
//! incidents, offers and jobs) before taking it.

use super::{Engine, Outbox};
use crate::ids::{DeviceId, ElderId, ResponderId, StationId, Timestamp};
use crate::ledger::{
    check, etag, Amend, Amended, Amendment, Entry, FieldError, LedgerAction, LedgerError, LedgerKind, LedgerRecord,
};

impl Engine {
    /// The live entry of `kind` with `id`, as the ledger holds it.
    pub fn entry(&self, kind: LedgerKind, id: &str) -> Option<Entry> {
        match kind {
            LedgerKind::Elder => self.elders.get(&ElderId::parse(id).ok()?).cloned().map(Entry::Elder),
            LedgerKind::Device => {
                let id = DeviceId::parse(id).ok()?;
                let d = self.devices.get(&id)?;
                let (elder_id, model) =
                    (d.elder_id.clone(), Self::model_name(&self.model_names, d.model).map(str::to_string));
                let sim = self.sim_of(&id);
                Some(Entry::Device(crate::registry::Device { id, elder_id, model, sim }))
            }
            LedgerKind::Station => self.stations.get(&StationId::parse(id).ok()?).cloned().map(Entry::Station),
            LedgerKind::Responder => self.responders.get(&ResponderId::parse(id).ok()?).cloned().map(Entry::Responder),
            LedgerKind::Staff => self.staff.get(id).cloned().map(Entry::Staff),
            LedgerKind::Provider => {
                self.services.providers.get(&crate::ids::ProviderId::parse(id).ok()?).cloned().map(Entry::Provider)
            }
        }
    }

    /// Takes a change to the ledger by `actor` at `now`: checks it, applies it, and appends
    /// its [`LedgerRecord`] to `out`. An upsert equal to the live entry changes nothing and
    /// logs nothing.
    pub fn amend(
        &mut self,
        amend: Amend,
        actor: &str,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<Amended, LedgerError> {
        let Amend { amendment, if_match, secret } = amend;
        let (kind, id) = (amendment.kind(), amendment.id().to_string());
        let live = self.entry(kind, &id);
        if let (Some(tag), Some(live)) = (&if_match, &live) {
            if tag != "*" && *tag != etag(live) {
                return Err(LedgerError::Stale { kind, id });
            }
        }
        let (action, entry) = match amendment {
            Amendment::Retire(..) => {
                let Some(live) = live.clone() else { return Err(LedgerError::NotFound { kind, id }) };
                self.check_retire(&live)?;
                (LedgerAction::Retired, live)
            }
            Amendment::Create(_) if live.is_some() => return Err(LedgerError::Exists { kind, id }),
            Amendment::Update(_) if live.is_none() => return Err(LedgerError::NotFound { kind, id }),
            Amendment::Create(entry) | Amendment::Update(entry) | Amendment::Upsert(entry) => {
                let entry = self.settle(entry, live.as_ref());
                if live.as_ref() == Some(&entry) && secret.is_none() {
                    let etag = Some(etag(&entry));
                    return Ok(Amended { kind, id, action: None, etag, seq: None });
                }
                let mut fields = check(&entry);
                fields.extend(self.check_references(&entry, live.as_ref()));
                if !fields.is_empty() {
                    return Err(LedgerError::Invalid { kind, id, fields });
                }
                let action = if live.is_some() { LedgerAction::Updated } else { LedgerAction::Created };
                (action, entry)
            }
        };
        if secret.is_some() && kind != LedgerKind::Device {
            let fields = vec![FieldError::new("password", "not_a_device", "only a device has a broker password")];
            return Err(LedgerError::Invalid { kind, id, fields });
        }
        match action {
            LedgerAction::Retired => self.take_out(&entry, now, out),
            _ => self.put(entry.clone(), live, now, out),
        }
        // Logged in the entry's zone; staff and providers, who work in every zone, in zone 0.
        let zone = match &entry {
            Entry::Station(s) => s.zone,
            Entry::Responder(r) => self.zone_of_station(&r.station_id),
            Entry::Elder(e) => self.zone_of_enrolment(e.profile.station_id.as_ref()),
            Entry::Device(d) => self.zone_of_elder(&d.elder_id),
            Entry::Staff(_) | Entry::Provider(_) => crate::zone::Zone::FIRST,
        };
        let seq = {
            let c = self.counters_of(zone);
            c.ledger += 1;
            c.ledger
        };
        let tag = (action != LedgerAction::Retired).then(|| etag(&entry));
        out.ledger.push(LedgerRecord {
            seq,
            at: now,
            actor: actor.to_string(),
            kind,
            id: id.clone(),
            action,
            entry,
            secret,
        });
        Ok(Amended { kind, id, action: Some(action), etag: tag, seq: Some(seq) })
    }

    /// The entry as the engine will hold it: contacts named, and a responder's live state
    /// (duty, and a position their phone reported) kept from the live entry.
    fn settle(&self, entry: Entry, live: Option<&Entry>) -> Entry {
        match (entry, live) {
            (Entry::Elder(mut e), _) => {
                e.profile.name_contacts();
                Entry::Elder(e)
            }
            (Entry::Responder(mut r), Some(Entry::Responder(was))) => {
                r.on_duty = was.on_duty;
                if was.position_at.is_some() {
                    r.position = was.position;
                    r.position_at = was.position_at;
                }
                Entry::Responder(r)
            }
            (Entry::Responder(mut r), None) => {
                r.position_at = None;
                Entry::Responder(r)
            }
            // A member of staff written without a password keeps theirs.
            (Entry::Staff(mut s), Some(Entry::Staff(was))) if s.password_hash.is_empty() => {
                s.password_hash = was.password_hash.clone();
                Entry::Staff(s)
            }
            (entry, _) => entry,
        }
    }

    /// What an entry refers to must be live; what refers to a changed key must still fit.
    fn check_references(&self, entry: &Entry, live: Option<&Entry>) -> Vec<FieldError> {
        let mut out = Vec::new();
        let station = |out: &mut Vec<FieldError>, field: &str, id: &StationId| {
            if !self.stations.contains_key(id) {
                out.push(FieldError::new(field, "unknown_station", format!("station {id} is not in the ledger")));
            }
        };
        let runs = |zone: crate::zone::Zone| self.counters.contains_key(&zone);
        let zones = || self.zones().map(|z| z.to_string()).collect::<Vec<_>>().join(", ");
        match entry {
            Entry::Elder(e) => match &e.profile.station_id {
                Some(s) => station(&mut out, "profile.station_id", s),
                // An elder enrolled with no station is zone 0's.
                None if !runs(crate::zone::Zone::FIRST) => {
                    let why =
                        format!("an elder enrolled with no station is in zone 0; this engine runs zone(s) {}", zones());
                    out.push(FieldError::new("profile.station_id", "other_zone", why));
                }
                None => {}
            },
            Entry::Station(s) => {
                let why = match live {
                    Some(Entry::Station(was)) if was.zone != s.zone => {
                        Some(format!("a station does not move between zones (it is in zone {})", was.zone))
                    }
                    _ if !runs(s.zone) => {
                        Some(format!("zone {} is not run by this engine (it runs zone(s) {})", s.zone, zones()))
                    }
                    _ => None,
                };
                if let Some(why) = why {
                    out.push(FieldError::new("zone", "other_zone", why));
                }
            }
            Entry::Device(d) => {
                if !self.elders.contains_key(&d.elder_id) {
                    let why = format!("elder {} is not in the ledger", d.elder_id);
                    out.push(FieldError::new("elder_id", "unknown_elder", why));
                }
                if let Some(sim) = &d.sim {
                    match self.caller_of(sim) {
                        // As the import checks it: 5 to 20 digits.
                        _ if crate::telephony::number_key(sim).is_none_or(|k| k.len() < 5) => {
                            let why = format!("{sim:?} is not a telephone number");
                            out.push(FieldError::new("sim", "bad_sim", why));
                        }
                        Some(c) if c.by == crate::telephony::CallerMatch::Sim && c.device.as_ref() != Some(&d.id) => {
                            let other = c.device.as_ref().map(|o| o.to_string()).unwrap_or_default();
                            let why = format!("SIM number {sim} is device {other}'s");
                            out.push(FieldError::new("sim", "duplicate_sim", why));
                        }
                        _ => {}
                    }
                }
                let moved = matches!(live, Some(Entry::Device(was)) if was.elder_id != d.elder_id);
                if let Some(open) = self.open_of(&d.id).filter(|_| moved) {
                    let why = format!("the device has open incident {open}: it cannot change hands until that ends");
                    out.push(FieldError::new("elder_id", "open_incident", why));
                }
            }
            Entry::Responder(r) => {
                station(&mut out, "station_id", &r.station_id);
                if let Some(p) = r.provider_id.as_ref().filter(|p| !self.services.providers.contains_key(*p)) {
                    let why = format!("provider {p} is not in the ledger");
                    out.push(FieldError::new("provider_id", "unknown_provider", why));
                }
            }
            Entry::Provider(p) => {
                if let Err(why) = p.check(|s| self.stations.contains_key(s)) {
                    out.push(FieldError::new("area", "bad_provider", why));
                }
            }
            Entry::Staff(_) => {}
        }
        out
    }

    /// Whether an entry can leave the live ledger now.
    fn check_retire(&self, live: &Entry) -> Result<(), LedgerError> {
        let in_use = |code: &'static str, why: String| LedgerError::InUse {
            kind: live.kind(),
            id: live.id().to_string(),
            code,
            why,
        };
        match live {
            Entry::Device(d) => match self.open_of(&d.id) {
                Some(open) => Err(in_use("open_incident", format!("it has open incident {open}"))),
                None => Ok(()),
            },
            Entry::Elder(e) => {
                let mut devices: Vec<&str> =
                    self.devices.iter().filter(|(_, d)| d.elder_id == e.id).map(|(id, _)| id.as_str()).collect();
                devices.sort_unstable();
                match devices.is_empty() {
                    true => Ok(()),
                    false => Err(in_use("has_devices", format!("retire their devices first: {}", devices.join(", ")))),
                }
            }
            Entry::Responder(r) => match self.busy.get(&r.id) {
                Some(incident) => Err(in_use("on_job", format!("they hold an offer or a job on incident {incident}"))),
                None => Ok(()),
            },
            Entry::Station(s) => {
                let mut responders: Vec<&str> =
                    self.by_station.get(&s.id).into_iter().flatten().map(ResponderId::as_str).collect();
                responders.sort_unstable();
                if !responders.is_empty() {
                    let why = format!("responders belong to it: {}", responders.join(", "));
                    return Err(in_use("has_responders", why));
                }
                let enrolled = self.elders.values().filter(|e| e.profile.station_id.as_ref() == Some(&s.id)).count();
                match enrolled {
                    0 => Ok(()),
                    n => Err(in_use("has_elders", format!("{n} elders are enrolled with it"))),
                }
            }
            Entry::Provider(p) => {
                let mut workers: Vec<&str> =
                    self.services.workers.get(&p.id).into_iter().flatten().map(ResponderId::as_str).collect();
                workers.sort_unstable();
                if !workers.is_empty() {
                    return Err(in_use("has_workers", format!("workers belong to it: {}", workers.join(", "))));
                }
                let holds = |o: &&crate::service::ServiceOrder| {
                    o.provider_id.as_ref() == Some(&p.id) || o.offer.as_ref().is_some_and(|x| x.provider_id == p.id)
                };
                match self.services.open.values().find(holds) {
                    Some(o) => Err(in_use("open_order", format!("it holds open order {}", o.id))),
                    None => Ok(()),
                }
            }
            Entry::Staff(_) => Ok(()),
        }
    }

    /// Puts a checked entry into the live ledger, replacing `live`.
    fn put(&mut self, entry: Entry, live: Option<Entry>, now: Timestamp, out: &mut Outbox) {
        match entry {
            Entry::Elder(e) => {
                if e.profile.lives_alone != Some(true) {
                    self.forget_activity(&e.id, "the elder no longer lives alone", now, out);
                }
                let id = e.id.clone();
                let was = match &live {
                    Some(Entry::Elder(was)) => was.phone.clone(),
                    _ => None,
                };
                self.elder_number_changed(&id, was.as_deref(), e.phone.as_deref());
                self.elders.insert(e.id.clone(), e);
                self.elder_schedule_changed(&id, live.is_none(), now, out);
            }
            Entry::Device(d) => {
                let enrolled = self.device_state(d.elder_id, d.model);
                match self.devices.get_mut(&d.id) {
                    Some(state) => (state.elder_id, state.model) = (enrolled.elder_id, enrolled.model),
                    None => {
                        self.devices.insert(d.id.clone(), enrolled);
                        self.watch_new_device(&d.id);
                        self.programme_device_added(&d.id);
                    }
                }
                let was = match &live {
                    Some(Entry::Device(was)) => Some(&was.elder_id),
                    _ => None,
                };
                self.device_number_changed(&d.id, d.sim, was);
            }
            Entry::Station(s) => {
                let was = match live {
                    Some(Entry::Station(was)) => Some(was.position),
                    _ => None,
                };
                self.matcher.set_station(s.id.clone(), was, s.position);
                self.stations.insert(s.id.clone(), s);
            }
            Entry::Responder(r) => {
                if let Some(Entry::Responder(was)) = &live {
                    if was.station_id != r.station_id {
                        self.leave_station(&was.station_id, &r.id);
                        self.by_station.entry(r.station_id.clone()).or_default().push(r.id.clone());
                    }
                } else {
                    self.by_station.entry(r.station_id.clone()).or_default().push(r.id.clone());
                }
                if r.on_duty && !self.busy.contains_key(&r.id) && r.provider_id.is_none() {
                    self.matcher.set_available(r.id.clone(), r.position);
                } else if r.provider_id.is_some() {
                    self.matcher.set_unavailable(&r.id);
                }
                self.services_roster_changed(&r);
                out.responders.push(r.id.clone());
                self.extras.moved(&r.id, r.position);
                self.responders.insert(r.id.clone(), r);
            }
            Entry::Staff(s) => {
                self.staff.insert(s.id.clone(), s);
            }
            Entry::Provider(p) => {
                self.services.providers.insert(p.id.clone(), p);
            }
        }
    }

    /// Takes a retired entry out of the live ledger (its row and history stay in the store).
    fn take_out(&mut self, entry: &Entry, now: Timestamp, out: &mut Outbox) {
        match entry {
            Entry::Elder(e) => {
                self.forget_activity(&e.id, "the elder was retired", now, out);
                self.elder_number_changed(&e.id, e.phone.as_deref(), None);
                self.elders.remove(&e.id);
                self.elder_schedule_changed(&e.id, false, now, out);
            }
            Entry::Device(d) => {
                self.forget_device_health(&d.id, now, out);
                self.device_number_gone(&d.id);
                self.devices.remove(&d.id);
                // Its incidents stay open for the dispatchers; a device enrolled again under
                // the same id starts with none.
                self.device_incidents.remove(&d.id);
            }
            Entry::Station(s) => {
                self.matcher.remove_station(&s.id, s.position);
                self.stations.remove(&s.id);
                self.by_station.remove(&s.id);
            }
            Entry::Responder(r) => {
                self.matcher.set_unavailable(&r.id);
                self.leave_station(&r.station_id, &r.id);
                if let Some(t) = self.fix_at.remove(&r.id) {
                    self.fixes.remove(&(t, r.id.clone()));
                }
                self.responders.remove(&r.id);
                self.services_roster_changed_away(&r.id);
                out.responders.push(r.id.clone());
            }
            Entry::Staff(s) => {
                self.staff.remove(&s.id);
            }
            Entry::Provider(p) => {
                self.services.providers.remove(&p.id);
            }
        }
    }

    fn leave_station(&mut self, station: &StationId, responder: &ResponderId) {
        if let Some(list) = self.by_station.get_mut(station) {
            list.retain(|r| r != responder);
            if list.is_empty() {
                self.by_station.remove(station);
            }
        }
    }

    /// The live devices of an elder, sorted.
    pub fn devices_of(&self, elder: &ElderId) -> Vec<DeviceId> {
        let mut ids: Vec<DeviceId> =
            self.devices.iter().filter(|(_, d)| &d.elder_id == elder).map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids
    }
}
