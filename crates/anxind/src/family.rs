//! Families' tokens and push subscriptions, answered from the store for the API's
//! [`Families`] trait, with names from the ledger (elders and their contacts as loaded at
//! start). Also the demo's links.

use anxin_api::family::{FamilyDenied, LinkDenied, SignedFamily};
use anxin_api::Families;
use anxin_core::PushSubscription;
use anxin_core::{Elder, ElderId, Registry, Timestamp};
use anxin_proto::family::{FamilyLinkInfo, FamilyMember};
use anxin_runtime::ports::BoxFuture;
use anxin_store::Store;
use std::collections::HashMap;
use std::sync::Arc;

/// The store and the ledger, as the API's [`Families`].
#[derive(Debug)]
pub struct StoreFamilies {
    store: Arc<dyn Store>,
    /// Elders by id, their contacts named (`c1`, `c2`... where the ledger gives no id).
    elders: HashMap<ElderId, Elder>,
}

impl StoreFamilies {
    pub fn new(store: Arc<dyn Store>, registry: &Registry) -> Self {
        let elders = registry
            .elders
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.profile.name_contacts();
                (e.id.clone(), e)
            })
            .collect();
        Self { store, elders }
    }

    fn member(&self, elder: &ElderId, contact: &str) -> Option<FamilyMember> {
        let e = self.elders.get(elder)?;
        let c = e.profile.contacts.iter().find(|c| c.id == contact)?;
        Some(FamilyMember {
            elder_id: e.id.clone(),
            elder_name: e.name.clone(),
            contact_id: c.id.clone(),
            contact_name: c.name.clone(),
            relation: c.relation.clone(),
        })
    }

    /// Issues a link for a contact as `issued_by`; its token (to put in `/family#t=`).
    pub async fn issue_token(
        &self,
        elder: &ElderId,
        contact: &str,
        issued_by: &str,
        at: Timestamp,
    ) -> Result<String, LinkDenied> {
        if self.member(elder, contact).is_none() {
            return Err(LinkDenied::NoSuchContact);
        }
        let token = anxin_api::family::new_token();
        let hash = anxin_api::token_sha256(&token);
        self.store.issue_family_token(&hash, elder, contact, issued_by, at).await.map_err(unavailable)?;
        Ok(token)
    }
}

fn unavailable(e: anxin_store::StoreError) -> LinkDenied {
    tracing::warn!(error = %e, "cannot read or write family links");
    LinkDenied::Unavailable
}

impl Families for StoreFamilies {
    fn sign_in(&self, token_sha256: String) -> BoxFuture<'_, Result<SignedFamily, FamilyDenied>> {
        Box::pin(async move {
            let token = self.store.family_token(&token_sha256).await.map_err(|e| {
                tracing::warn!(error = %e, "cannot read family tokens");
                FamilyDenied::Unavailable
            })?;
            let token = token.ok_or(FamilyDenied::Unknown)?;
            if token.revoked_at.is_some() {
                return Err(FamilyDenied::Revoked);
            }
            // A contact taken off the ledger since signs in no more.
            let member = self.member(&token.elder_id, &token.contact_id).ok_or(FamilyDenied::Revoked)?;
            Ok(SignedFamily { elder: token.elder_id, member })
        })
    }

    fn issue(
        &self,
        elder: ElderId,
        contact: String,
        token_sha256: String,
        issued_by: String,
        at: Timestamp,
    ) -> BoxFuture<'_, Result<(), LinkDenied>> {
        Box::pin(async move {
            if self.member(&elder, &contact).is_none() {
                return Err(LinkDenied::NoSuchContact);
            }
            self.store.issue_family_token(&token_sha256, &elder, &contact, &issued_by, at).await.map_err(unavailable)
        })
    }

    fn revoke(&self, elder: ElderId, contact: String, at: Timestamp) -> BoxFuture<'_, Result<(), LinkDenied>> {
        Box::pin(async move {
            if self.member(&elder, &contact).is_none() {
                return Err(LinkDenied::NoSuchContact);
            }
            self.store.revoke_family_tokens(&elder, &contact, at).await.map(drop).map_err(unavailable)
        })
    }

    fn links(&self, elder: ElderId) -> BoxFuture<'_, Result<Vec<FamilyLinkInfo>, LinkDenied>> {
        Box::pin(async move {
            let live = self.store.live_family_tokens(&elder).await.map_err(unavailable)?;
            Ok(live
                .into_iter()
                .map(|t| FamilyLinkInfo { contact_id: t.contact_id, issued_at: t.issued_at, issued_by: t.issued_by })
                .collect())
        })
    }

    fn push_subscription(
        &self,
        who: SignedFamily,
        endpoint: String,
        keys: Option<(String, String)>,
        at: Timestamp,
    ) -> BoxFuture<'_, Result<(), LinkDenied>> {
        Box::pin(async move {
            let contact = who.member.contact_id;
            match keys {
                Some((p256dh, auth)) => {
                    let sub = PushSubscription {
                        endpoint,
                        elder_id: who.elder,
                        contact_id: contact,
                        p256dh,
                        auth,
                        created_at: at,
                    };
                    self.store.save_push_subscription(&sub).await.map_err(unavailable)
                }
                None => self
                    .store
                    .delete_push_subscription(&who.elder, &contact, &endpoint)
                    .await
                    .map(drop)
                    .map_err(unavailable),
            }
        })
    }
}
