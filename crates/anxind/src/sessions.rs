//! Dispatchers' and supervisors' sessions kept in the store ([`anxin_api::SessionBook`]), so
//! that a console sent to another node, or back to this one after a restart, stays signed in.

use anxin_api::{KeptSession, SessionBook};
use anxin_core::Timestamp;
use anxin_runtime::ports::BoxFuture;
use anxin_store::{StaffSession, Store};
use std::sync::Arc;

/// The store's `staff_sessions`, as the console's sign-in keeps them.
#[derive(Debug, Clone)]
pub struct StoreSessions(pub Arc<dyn Store>);

impl SessionBook for StoreSessions {
    fn open(&self, s: KeptSession) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let row = StaffSession {
                token_sha256: s.token_sha256,
                staff_id: s.staff_id,
                staff_key: s.staff_key,
                opened_at: s.opened_at,
                used_at: s.used_at,
            };
            self.0.open_staff_session(&row).await.map_err(|e| e.to_string())
        })
    }

    fn find(&self, token_sha256: String) -> BoxFuture<'_, Result<Option<KeptSession>, String>> {
        Box::pin(async move {
            let row = self.0.staff_session(&token_sha256).await.map_err(|e| e.to_string())?;
            Ok(row.map(|s| KeptSession {
                token_sha256: s.token_sha256,
                staff_id: s.staff_id,
                staff_key: s.staff_key,
                opened_at: s.opened_at,
                used_at: s.used_at,
            }))
        })
    }

    fn touch(&self, token_sha256: String, at: Timestamp) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.0.touch_staff_session(&token_sha256, at).await.map_err(|e| e.to_string()) })
    }

    fn close(&self, token_sha256: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.0.close_staff_session(&token_sha256).await.map(drop).map_err(|e| e.to_string()) })
    }

    fn forget_idle(&self, before: Timestamp) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(async move { self.0.forget_idle_staff_sessions(before).await.map_err(|e| e.to_string()) })
    }
}

/// Sign-in for `staff`, its sessions kept in `store`.
pub fn kept(staff: Vec<anxin_core::Staff>, store: Arc<dyn Store>) -> Arc<anxin_api::Sessions> {
    Arc::new(anxin_api::Sessions::new(staff).kept_in(Arc::new(StoreSessions(store))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anxin_core::{Staff, StaffRole};
    use std::time::Duration;

    /// Two nodes on one store (SQLite here; the stories run PostgreSQL too): a session opened
    /// on one is good on the other, and a sign-out on either ends it on both.
    #[tokio::test]
    async fn a_session_opened_on_one_node_is_good_on_another_until_signed_out_on_either() {
        let dir = tempfile::tempdir().unwrap();
        let store = anxin_store::open(&format!("sqlite://{}", dir.path().join("anxin.db").display())).await.unwrap();
        let wang = Staff {
            id: "wang".into(),
            name: "王芳".into(),
            role: StaffRole::Dispatcher,
            password_hash: anxin_api::hash_password("night-shift"),
        };
        let node = |store: &Arc<dyn Store>| {
            anxin_api::Sessions::new([wang.clone()])
                .kept_in(Arc::new(StoreSessions(store.clone())))
                .recheck_every(Duration::ZERO)
        };
        let (a, b) = (node(&store), node(&store));
        let user = a.check("wang", "night-shift").expect("the right password");
        let token = a.open(&user).await.unwrap();
        assert_eq!(b.user(&token).await.map(|u| u.id), Some("wang".into()), "the other node knows the cookie");
        assert_eq!(b.user("a-made-up-token").await, None);

        b.sign_out(&token).await;
        assert_eq!(a.user(&token).await, None, "signed out on the other node: ended here too");

        // A new password learnt by one node ends, there, a session opened under the old one.
        let token = a.open(&user).await.unwrap();
        assert!(b.user(&token).await.is_some());
        b.set_staff(Staff { password_hash: anxin_api::hash_password("day-shift"), ..wang.clone() });
        assert_eq!(b.user(&token).await, None);
    }
}
