//! Families' side of the store: the sign-in tokens a dispatcher issues to an elder's
//! contacts for the family page (kept only as their SHA-256), and the Web Push
//! subscriptions those pages register. The same statements serve both databases, as in
//! `sql.rs`.

use crate::sql::{PostgresStore, SqliteStore};
use crate::StoreError;
use anxin_core::{ElderId, PushSubscription, Timestamp};
use async_trait::async_trait;
use sqlx::Row;

/// One sign-in token of a contact, as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyToken {
    /// SHA-256 of the token, lowercase hex.
    pub token_sha256: String,
    pub elder_id: ElderId,
    pub contact_id: String,
    pub issued_at: Timestamp,
    /// The staff id who issued it (or `demo`).
    pub issued_by: String,
    /// When it stopped signing in: revoked, or replaced by a newer one.
    pub revoked_at: Option<Timestamp>,
}

/// Tokens and push subscriptions. Part of every [`crate::Store`].
#[async_trait]
pub trait FamilyStore: Send + Sync {
    /// Keeps a new token (by its hash) for one contact of an elder, and revokes, as of `at`,
    /// every earlier token of that contact: a contact has one link that works.
    async fn issue_family_token(
        &self,
        token_sha256: &str,
        elder: &ElderId,
        contact: &str,
        issued_by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Revokes every live token of one contact; how many there were.
    async fn revoke_family_tokens(&self, elder: &ElderId, contact: &str, at: Timestamp) -> Result<u64, StoreError>;

    /// The token with this hash, revoked or not (a revoked one must not sign in: its
    /// `revoked_at` says so).
    async fn family_token(&self, token_sha256: &str) -> Result<Option<FamilyToken>, StoreError>;

    /// The live (unrevoked) tokens of an elder's contacts, by contact id.
    async fn live_family_tokens(&self, elder: &ElderId) -> Result<Vec<FamilyToken>, StoreError>;

    /// Keeps a contact's push subscription; the same endpoint again replaces its keys (a
    /// browser that subscribed anew).
    async fn save_push_subscription(&self, subscription: &PushSubscription) -> Result<(), StoreError>;

    /// Forgets a contact's subscription by endpoint (one of another contact stays); whether
    /// there was one.
    async fn delete_push_subscription(
        &self,
        elder: &ElderId,
        contact: &str,
        endpoint: &str,
    ) -> Result<bool, StoreError>;

    /// A contact's push subscriptions, oldest first.
    async fn push_subscriptions(&self, elder: &ElderId, contact: &str) -> Result<Vec<PushSubscription>, StoreError>;
}

/// Revokes a contact's live tokens: `$1` when, `$2` the elder, `$3` the contact.
const REVOKE: &str =
    "UPDATE family_tokens SET revoked_at = $1 WHERE elder_id = $2 AND contact_id = $3 AND revoked_at IS NULL";

fn elder_id(text: String) -> Result<ElderId, StoreError> {
    ElderId::parse(text).map_err(|e| StoreError::Corrupt(format!("elder id: {e}")))
}

macro_rules! family_store {
    ($store:ty, $row:ty) => {
        impl $store {
            fn token_row(row: $row) -> Result<FamilyToken, StoreError> {
                Ok(FamilyToken {
                    token_sha256: row.try_get("token_sha256")?,
                    elder_id: elder_id(row.try_get("elder_id")?)?,
                    contact_id: row.try_get("contact_id")?,
                    issued_at: Timestamp(row.try_get("issued_at")?),
                    issued_by: row.try_get("issued_by")?,
                    revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(Timestamp),
                })
            }
        }

        #[async_trait]
        impl FamilyStore for $store {
            async fn issue_family_token(
                &self,
                token_sha256: &str,
                elder: &ElderId,
                contact: &str,
                issued_by: &str,
                at: Timestamp,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(REVOKE).bind(at.millis()).bind(elder.as_str()).bind(contact).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO family_tokens (token_sha256, elder_id, contact_id, issued_at, issued_by) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(token_sha256)
                .bind(elder.as_str())
                .bind(contact)
                .bind(at.millis())
                .bind(issued_by)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn revoke_family_tokens(
                &self,
                elder: &ElderId,
                contact: &str,
                at: Timestamp,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(REVOKE)
                .bind(at.millis())
                .bind(elder.as_str())
                .bind(contact)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn family_token(&self, token_sha256: &str) -> Result<Option<FamilyToken>, StoreError> {
                sqlx::query(
                    "SELECT token_sha256, elder_id, contact_id, issued_at, issued_by, revoked_at \
                     FROM family_tokens WHERE token_sha256 = $1",
                )
                .bind(token_sha256)
                .fetch_optional(&self.pool)
                .await?
                .map(Self::token_row)
                .transpose()
            }

            async fn live_family_tokens(&self, elder: &ElderId) -> Result<Vec<FamilyToken>, StoreError> {
                sqlx::query(
                    "SELECT token_sha256, elder_id, contact_id, issued_at, issued_by, revoked_at \
                     FROM family_tokens WHERE elder_id = $1 AND revoked_at IS NULL ORDER BY contact_id, issued_at",
                )
                .bind(elder.as_str())
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(Self::token_row)
                .collect()
            }

            async fn save_push_subscription(&self, s: &PushSubscription) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO push_subscriptions (endpoint, elder_id, contact_id, p256dh, auth, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (endpoint) DO UPDATE SET \
                     elder_id = excluded.elder_id, contact_id = excluded.contact_id, p256dh = excluded.p256dh, \
                     auth = excluded.auth, created_at = excluded.created_at",
                )
                .bind(s.endpoint.as_str())
                .bind(s.elder_id.as_str())
                .bind(s.contact_id.as_str())
                .bind(s.p256dh.as_str())
                .bind(s.auth.as_str())
                .bind(s.created_at.millis())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn delete_push_subscription(
                &self,
                elder: &ElderId,
                contact: &str,
                endpoint: &str,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM push_subscriptions WHERE endpoint = $1 AND elder_id = $2 AND contact_id = $3",
                )
                .bind(endpoint)
                .bind(elder.as_str())
                .bind(contact)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn push_subscriptions(
                &self,
                elder: &ElderId,
                contact: &str,
            ) -> Result<Vec<PushSubscription>, StoreError> {
                sqlx::query(
                    "SELECT endpoint, elder_id, contact_id, p256dh, auth, created_at FROM push_subscriptions \
                     WHERE elder_id = $1 AND contact_id = $2 ORDER BY created_at, endpoint",
                )
                .bind(elder.as_str())
                .bind(contact)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|row| {
                    Ok(PushSubscription {
                        endpoint: row.try_get("endpoint")?,
                        elder_id: elder_id(row.try_get("elder_id")?)?,
                        contact_id: row.try_get("contact_id")?,
                        p256dh: row.try_get("p256dh")?,
                        auth: row.try_get("auth")?,
                        created_at: Timestamp(row.try_get("created_at")?),
                    })
                })
                .collect()
            }
        }
    };
}

family_store!(SqliteStore, sqlx::sqlite::SqliteRow);
family_store!(PostgresStore, sqlx::postgres::PgRow);
