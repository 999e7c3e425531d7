//! The live ledger's anxind side: the administration API's reads, answered from the store,
//! and what a stored change means outside the engine (sign-in tables, consoles' maps, the
//! broker's accounts).

use anxin_api::{LedgerSide, LedgerUnavailable};
use anxin_core::{DeviceId, DeviceSecret, ElderId, Entry, LedgerAction, LedgerKind, LedgerRecord};
use anxin_proto::admin::{EntryHistory, IncidentBrief, LedgerItem, LedgerPage, LedgerQuery};
use anxin_store::Store;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most changes and incidents an entry's history shows.
const HISTORY_LIMIT: u32 = 200;

/// The store, as the administration API's [`LedgerSide`].
#[derive(Debug)]
pub struct StoreLedger(pub Arc<dyn Store>);

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
