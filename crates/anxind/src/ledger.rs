//! The live ledger's anxind side: the administration API's reads, answered from the store,
//! and what a stored change means outside the engine (sign-in tables, consoles' maps, the
//! broker's accounts).

use anxin_api::{LedgerSide, LedgerUnavailable};
use anxin_core::{DeviceId, DeviceSecret, ElderId, Entry, LedgerAction, LedgerKind, LedgerRecord};
use anxin_proto::admin::{
    EntryHistory, ImportChecked, ImportRequest, IncidentBrief, LedgerItem, LedgerPage, LedgerQuery,
};
use anxin_store::Store;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most changes and incidents an entry's history shows.
const HISTORY_LIMIT: u32 = 200;

/// The store, as the administration API's [`LedgerSide`].
#[derive(Debug)]
pub struct StoreLedger(pub Arc<dyn Store>, pub ProgrammeExport);

/// What the welfare programme's export needs besides the store.
#[derive(Debug, Clone, Copy)]
pub struct ProgrammeExport {
    /// A task open this long after it fell due is overdue (`programme.overdue_after_h`).
    pub overdue_after_ms: i64,
    /// How far back the export reaches.
    pub days: i64,
}

fn unavailable(what: &str) -> impl FnOnce(anxin_store::StoreError) -> LedgerUnavailable + '_ {
    move |e| {
        tracing::warn!(error = %e, "cannot read {what}");
        LedgerUnavailable
    }
}

impl LedgerSide for StoreLedger {
    fn page(&self, query: LedgerQuery) -> BoxFuture<'_, Result<LedgerPage, LedgerUnavailable>> {
        Box::pin(async move { self.0.ledger_page(&query).await.map_err(unavailable("a ledger page")) })
    }

    fn item(&self, kind: LedgerKind, id: String) -> BoxFuture<'_, Result<Option<LedgerItem>, LedgerUnavailable>> {
        Box::pin(async move { self.0.ledger_item(kind, &id).await.map_err(unavailable("a ledger entry")) })
    }

    fn history(&self, kind: LedgerKind, id: String) -> BoxFuture<'_, Result<EntryHistory, LedgerUnavailable>> {
        Box::pin(async move {
            let changes = self.0.ledger_history(kind, &id, HISTORY_LIMIT).await.map_err(unavailable("a history"))?;
            let incidents = match kind {
                LedgerKind::Elder => match ElderId::parse(id.as_str()) {
                    Ok(elder) => self
                        .0
                        .elder_incidents(&elder, anxin_core::Timestamp(0), HISTORY_LIMIT)
                        .await
                        .map_err(unavailable("an elder's incidents"))?,
                    Err(_) => Vec::new(),
                },
                LedgerKind::Device => match DeviceId::parse(id.as_str()) {
                    Ok(device) => self
                        .0
                        .device_incidents(&device, HISTORY_LIMIT)
                        .await
                        .map_err(unavailable("a device's incidents"))?,
                    Err(_) => Vec::new(),
                },
                _ => Vec::new(),
            };
            Ok(EntryHistory { changes, incidents: incidents.iter().map(IncidentBrief::from).collect() })
        })
    }

    fn import_check(
        &self,
        request: ImportRequest,
        file: Vec<u8>,
        progress: anxin_api::admin::Progress,
    ) -> BoxFuture<'_, Result<ImportChecked, String>> {
        Box::pin(async move {
            use anxin_ledger_io as io;
            let kind = io::Kind::parse(&request.kind)
                .ok_or_else(|| format!("kind {:?} is not elders, devices, stations or responders", request.kind))?;
            let format = parse_format(&request.format)?;
            let encoding = parse_encoding(request.encoding.as_deref().unwrap_or("auto"))?;
            // None named: the default, fitted to the file's headers once it is read.
            let mapping = match &request.mapping {
                Some(name) => Some({
                    let saved = self.0.mappings().await.map_err(|e| format!("cannot read the saved mappings: {e}"))?;
                    let found =
                        saved.into_iter().find(|m| &m.name == name).ok_or_else(|| format!("no mapping {name:?}"))?;
                    serde_json::from_str::<io::Mapping>(&found.body).map_err(|e| format!("mapping {name:?}: {e}"))?
                }),
                None => None,
            };
            if let Some(mapping) = mapping.as_ref().filter(|m| m.kind != kind) {
                return Err(format!("mapping {:?} is for {}, not {}", request.mapping, mapping.kind, kind));
            }
            let ledger = self.0.load_registry().await.map_err(|e| format!("cannot read the ledger: {e}"))?;
            tokio::task::spawn_blocking(move || {
                let mut table =
                    io::read_table(&file, format, encoding, request.sheet.as_deref()).map_err(|e| e.to_string())?;
                let mapping = match mapping {
                    Some(mapping) => {
                        mapping.locate_header(&mut table);
                        mapping
                    }
                    None => io::Mapping::default_for_file(kind, &mut table),
                };
                let report = io::check(&table, &mapping, &ledger, &mut |done, total| progress(done, total))
                    .map_err(|e| e.to_string())?;
                let entries = report
                    .to_apply()
                    .map(|e| match e.clone() {
                        io::Entity::Elder(x) => Entry::Elder(x),
                        io::Entity::Device(x) => Entry::Device(x),
                        io::Entity::Station(x) => Entry::Station(x),
                        io::Entity::Responder(x) => Entry::Responder(x),
                    })
                    .collect();
                // The report without its rows (the entries are apart): counts and problems.
                let mut report = serde_json::to_value(&report).map_err(|e| e.to_string())?;
                if let Some(r) = report.as_object_mut() {
                    r.remove("rows");
                    r.insert("encoding".into(), table.encoding.map(|e| e.as_str()).into());
                }
                Ok(ImportChecked { report, entries })
            })
            .await
            .map_err(|e| format!("the check stopped: {e}"))?
        })
    }

    fn export(
        &self,
        kind: String,
        format: String,
        encoding: String,
    ) -> BoxFuture<'_, Result<(Vec<u8>, &'static str), String>> {
        Box::pin(async move {
            use anxin_ledger_io as io;
            if kind == "programme" {
                if format != "csv" || encoding != "utf-8" {
                    return Err("the programme is exported as format=csv, encoding=utf-8".into());
                }
                let now = anxin_proto::wall_clock_now();
                let since = now.plus_millis(-self.1.days * 86_400_000);
                let tasks =
                    self.0.welfare_incidents(since).await.map_err(|e| format!("cannot read the programme: {e}"))?;
                return Ok((
                    programme_csv(&tasks, self.1.overdue_after_ms, now).into_bytes(),
                    "text/csv; charset=utf-8",
                ));
            }
            let kind = io::Kind::parse(&kind)
                .ok_or_else(|| format!("kind {kind:?} is not elders, devices, stations or responders"))?;
            let format = parse_format(&format)?;
            let encoding = parse_encoding(&encoding)?;
            let ledger = self.0.load_registry().await.map_err(|e| format!("cannot read the ledger: {e}"))?;
            let bytes = tokio::task::spawn_blocking(move || io::export(&ledger, kind, format, encoding))
                .await
                .map_err(|e| format!("the export stopped: {e}"))?
                .map_err(|e| e.to_string())?;
            let content_type = match format {
                io::Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                io::Format::Csv if encoding == io::Encoding::Gbk => "text/csv; charset=gbk",
                io::Format::Csv => "text/csv; charset=utf-8",
            };
            Ok((bytes, content_type))
        })
    }

    fn mappings(&self) -> BoxFuture<'_, Result<Vec<serde_json::Value>, LedgerUnavailable>> {
        Box::pin(async move {
            let saved = self.0.mappings().await.map_err(unavailable("the saved mappings"))?;
            Ok(saved
                .into_iter()
                .map(|m| {
                    let body: serde_json::Value = serde_json::from_str(&m.body).unwrap_or_default();
                    serde_json::json!({"name": m.name, "kind": m.kind, "mapping": body, "saved_at": m.saved_at, "saved_by": m.saved_by})
                })
                .collect())
        })
    }

    fn save_mapping(&self, name: String, mapping: serde_json::Value, by: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let parsed: anxin_ledger_io::Mapping =
                serde_json::from_value(mapping).map_err(|e| format!("not a mapping: {e}"))?;
            let saved = anxin_store::SavedMapping {
                name,
                kind: parsed.kind.as_str().to_string(),
                body: serde_json::to_string(&parsed).map_err(|e| e.to_string())?,
                saved_at: anxin_proto::wall_clock_now(),
                saved_by: by,
            };
            self.0.save_mapping(&saved).await.map_err(|e| format!("cannot save the mapping: {e}"))
        })
    }

    fn device_secret(&self, password: String) -> DeviceSecret {
        let mut salt = [0u8; 12];
        getrandom::fill(&mut salt).expect("the operating system's random source");
        let hash =
            anxin_mqtt::credentials::hash_password(password.as_bytes(), &salt, anxin_mqtt::credentials::ITERATIONS);
        DeviceSecret { password, hash }
    }
}

/// Tells the sign-in tables what a stored batch changed in the ledger: a responder's phone
/// token, a member of staff's sign-in. (Devices' broker accounts: [`crate::ports::FeedPort`].)
pub fn apply_to_sign_ins(records: &[LedgerRecord], phones: &anxin_api::ResponderHub, sessions: &anxin_api::Sessions) {
    for r in records {
        match (&r.entry, r.action) {
            (Entry::Responder(x), LedgerAction::Retired) => phones.set_token(&x.id, None),
            (Entry::Responder(x), _) => phones.set_token(&x.id, x.token_sha256.as_deref()),
            (Entry::Staff(s), LedgerAction::Retired) => sessions.remove_staff(&s.id),
            (Entry::Staff(s), _) => sessions.set_staff(s.clone()),
            _ => {}
        }
    }
}

/// Tells the broker of devices added, re-keyed and retired, one change at a time in the
/// ledger's order, off the engine's path (a broker that is slow to answer holds up nothing).
#[derive(Debug, Clone)]
pub struct BrokerAccounts {
    tx: tokio::sync::mpsc::UnboundedSender<(DeviceAccount, bool)>,
}

use anxin_mqtt::provision::{DeviceAccount, Provisioner};

impl BrokerAccounts {
    /// Starts the task that tells `provisioner`.
    pub fn spawn(provisioner: Arc<dyn Provisioner>) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(DeviceAccount, bool)>();
        tokio::spawn(async move {
            while let Some((account, retired)) = rx.recv().await {
                let result = match retired {
                    true => provisioner.retire(&account.id).await,
                    false => provisioner.upsert(&account).await,
                };
                match result {
                    Ok(()) => {
                        tracing::info!(device = %account.id, retired, broker = provisioner.kind(), "broker account changed")
                    }
                    Err(e) => tracing::warn!(
                        device = %account.id, retired, error = %e,
                        "the broker was not told of a device's account: reset its password or restart to reconcile"
                    ),
                }
            }
        });
        Self { tx }
    }

    /// Hands the batch's device changes to the task.
    pub fn tell(&self, records: &[LedgerRecord]) {
        for r in records {
            let Entry::Device(d) = &r.entry else { continue };
            let retired = r.action == LedgerAction::Retired;
            // A change that sets no password (a device moved to another elder) leaves the
            // account as it is.
            if !retired && r.secret.is_none() {
                continue;
            }
            let account = DeviceAccount {
                id: d.id.clone(),
                password: r.secret.as_ref().map(|s| s.password.clone()),
                password_hash: r.secret.as_ref().map(|s| s.hash.clone()),
            };
            let _ = self.tx.send((account, retired));
        }
    }
}

/// Makes the broker agree with the stored ledger at start: retired devices refused, devices
/// whose password was set through the ledger admitted (by hash, where the broker takes one).
pub async fn reconcile_broker(store: &dyn Store, provisioner: &dyn Provisioner) -> anyhow::Result<()> {
    let rows = store.device_accounts().await.map_err(|e| anyhow::anyhow!("cannot read devices' accounts: {e}"))?;
    let mut live = Vec::new();
    let mut retired = Vec::new();
    for row in rows {
        let Ok(id) = DeviceId::parse(row.id.as_str()) else { continue };
        match (row.retired, row.password_hash) {
            (true, _) => retired.push(id),
            (false, Some(hash)) => live.push(DeviceAccount { id, password: None, password_hash: Some(hash) }),
            (false, None) => {}
        }
    }
    crate::provision::reconcile(provisioner, &live, &retired).await?;
    Ok(())
}

fn parse_format(s: &str) -> Result<anxin_ledger_io::Format, String> {
    match s {
        "csv" => Ok(anxin_ledger_io::Format::Csv),
        "xlsx" => Ok(anxin_ledger_io::Format::Xlsx),
        other => Err(format!("format {other:?} is not csv or xlsx")),
    }
}

fn parse_encoding(s: &str) -> Result<anxin_ledger_io::Encoding, String> {
    match s {
        "auto" | "" => Ok(anxin_ledger_io::Encoding::Auto),
        "utf-8" | "utf8" => Ok(anxin_ledger_io::Encoding::Utf8),
        "gbk" => Ok(anxin_ledger_io::Encoding::Gbk),
        other => Err(format!("encoding {other:?} is not auto, utf-8 or gbk")),
    }
}

/// The welfare programme's ledger as CSV: one row a scheduled call or visit, with whether it
/// is (or was) overdue, and a last line counting the open, overdue and done.
pub fn programme_csv(tasks: &[anxin_core::Incident], overdue_after_ms: i64, now: anxin_core::Timestamp) -> String {
    use anxin_core::{IncidentState, WelfareReason};
    let mut out = String::from("task_id,elder_id,device_id,task,due_at,state,ended_at,outcome,overdue\n");
    let (mut open, mut overdue_open, mut done, mut done_late) = (0, 0, 0, 0);
    for t in tasks {
        let task = match t.welfare {
            Some(WelfareReason::ScheduledCall) => "call",
            Some(WelfareReason::ScheduledVisit) => "visit",
            _ => continue,
        };
        let ended = matches!(t.state, IncidentState::Closed | IncidentState::Cancelled | IncidentState::FalseAlarm);
        let by = if ended { t.updated_at } else { now };
        // A task's `pressed_at` is when it fell due (earlier than it opened if the centre
        // was down then).
        let overdue = by.millis() - t.pressed_at.millis() >= overdue_after_ms;
        match (ended, overdue) {
            (false, o) => {
                open += 1;
                overdue_open += usize::from(o);
            }
            (true, o) => {
                done += 1;
                done_late += usize::from(o);
            }
        }
        let outcome = t.outcome.as_deref().unwrap_or_default().replace('"', "\"\"");
        out.push_str(&format!(
            "{},{},{},{task},{},{},{},\"{outcome}\",{}\n",
            t.id,
            t.elder_id,
            t.device_id,
            utc_text(t.pressed_at),
            t.state.as_str(),
            if ended { utc_text(t.updated_at) } else { String::new() },
            if overdue { "yes" } else { "no" },
        ));
    }
    out.push_str(&format!("# open {open}, of them overdue {overdue_open}; done {done}, of them late {done_late}\n"));
    out
}

/// `2026-12-03T08:00:00Z`.
pub fn utc_text(t: anxin_core::Timestamp) -> String {
    let secs = t.millis().div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (proleptic Gregorian), by 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod programme_tests {
    #[test]
    fn times_are_written_in_utc() {
        assert_eq!(super::utc_text(anxin_core::Timestamp(0)), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc_text(anxin_core::Timestamp(1_762_012_800_000)), "2025-11-01T16:00:00Z");
        assert_eq!(super::utc_text(anxin_core::Timestamp(951_782_400_000)), "2000-02-29T00:00:00Z");
    }
}

/// The store, as the supervisors' reports' [`anxin_api::ReportSide`], with the centre's
/// offset and the wallboard's limits, so a day's report and the wallboard's day agree.
#[derive(Debug)]
pub struct StoreReports {
    pub store: Arc<dyn Store>,
    pub utc_offset_min: i32,
    pub limits: anxin_core::StandardLimits,
    /// `[reports] shifts`, for a report by shift.
    pub shifts: anxin_core::Shifts,
    /// `programme.overdue_after_h`, for the welfare programme's tasks done late.
    pub programme_overdue_ms: i64,
}

impl anxin_api::ReportSide for StoreReports {
    fn utc_offset_min(&self) -> i32 {
        self.utc_offset_min
    }

    fn report(
        &self,
        from: anxin_core::Timestamp,
        to: anxin_core::Timestamp,
        by: anxin_core::Grouping,
        now: anxin_core::Timestamp,
    ) -> BoxFuture<'_, Result<anxin_core::Report, anxin_api::ReportUnavailable>> {
        let q = anxin_core::ReportQuery {
            from,
            to,
            by,
            utc_offset_min: self.utc_offset_min,
            limits: self.limits,
            now,
            shifts: self.shifts.clone(),
            programme_overdue_ms: self.programme_overdue_ms,
        };
        Box::pin(async move {
            self.store.report(&q).await.map_err(|e| {
                tracing::warn!(error = %e, "cannot read a report");
                anxin_api::ReportUnavailable
            })
        })
    }
}

/// The store, as the service statements' [`anxin_api::services::ServiceSide`].
#[derive(Debug)]
pub struct StoreServices {
    pub store: Arc<dyn Store>,
    pub utc_offset_min: i32,
}

impl anxin_api::services::ServiceSide for StoreServices {
    fn statement(
        &self,
        month: String,
        by: anxin_core::service::StatementBy,
    ) -> BoxFuture<'_, Result<Option<anxin_core::service::Statement>, anxin_api::services::StatementUnavailable>> {
        Box::pin(async move {
            let Some((_, from, to)) = anxin_core::service::parse_month(&month, self.utc_offset_min) else {
                return Ok(None);
            };
            let unavailable = |e: anxin_store::StoreError| {
                tracing::warn!(error = %e, "cannot read a service statement");
                anxin_api::services::StatementUnavailable
            };
            // An order counts in the month of its appointment, which lies in its window: a
            // window may start up to a month before.
            let q = anxin_store::OrderQuery {
                from: Some(anxin_core::Timestamp(from.0 - 31 * 86_400_000)),
                to: Some(to),
                limit: u32::MAX,
                ..Default::default()
            };
            let orders = self.store.orders(&q).await.map_err(unavailable)?;
            let mut elders: Vec<anxin_core::ElderId> = orders.iter().map(|o| o.elder_id.clone()).collect();
            elders.sort();
            elders.dedup();
            let names = self.store.names(&elders).await.map_err(unavailable)?;
            Ok(anxin_core::service::statement(
                &month,
                &orders,
                by,
                self.utc_offset_min,
                |e| names.elders.get(e.as_str()).cloned().unwrap_or_default(),
                |p| names.providers.get(p.as_str()).cloned().unwrap_or_default(),
            ))
        })
    }

    fn history(
        &self,
        id: anxin_core::OrderId,
    ) -> BoxFuture<'_, Result<Option<anxin_proto::rest::OrderHistory>, anxin_api::services::StatementUnavailable>> {
        Box::pin(async move {
            let unavailable = |e: anxin_store::StoreError| {
                tracing::warn!(error = %e, order = id.0, "cannot read a service order's history");
                anxin_api::services::StatementUnavailable
            };
            let Some(order) = self.store.order(id).await.map_err(unavailable)? else { return Ok(None) };
            let events = self.store.order_events(id).await.map_err(unavailable)?;
            let names = self.store.names(std::slice::from_ref(&order.elder_id)).await.map_err(unavailable)?;
            let worker_names = events
                .iter()
                .filter_map(|e| match &e.actor {
                    anxin_core::Actor::Responder(id) => Some((id.to_string(), names.workers.get(id.as_str())?.clone())),
                    _ => None,
                })
                .collect();
            Ok(Some(anxin_proto::rest::OrderHistory {
                worker_names,
                elder_name: names.elders.get(order.elder_id.as_str()).cloned().unwrap_or_default(),
                provider_name: order.provider_id.as_ref().and_then(|p| names.providers.get(p.as_str()).cloned()),
                order,
                events,
            }))
        })
    }
}
