//! Dispatchers' and supervisors' sessions (`staff_sessions`), kept in the store so that any
//! node knows a console's cookie: a proxy may send a console to another node when its own
//! dies, and a single node's restart signs nobody out. Only each token's SHA-256 is kept. The
//! same statements serve both databases, as in `sql.rs`.

use crate::sql::{PostgresStore, SqliteStore};
use crate::StoreError;
use anxin_core::Timestamp;
use async_trait::async_trait;
use sqlx::Row;

/// A session as stored (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSession {
    /// SHA-256 of the token, lowercase hex.
    pub token_sha256: String,
    pub staff_id: String,
    /// SHA-256 (hex) of the member of staff's role and password hash when they signed in: a
    /// session whose key is no longer theirs has ended.
    pub staff_key: String,
    pub opened_at: Timestamp,
    /// Last seen in use (written at most once a minute).
    pub used_at: Timestamp,
}

/// Staff sessions. Part of every [`crate::Store`].
#[async_trait]
pub trait StaffSessionStore: Send + Sync {
    /// Keeps a session just opened.
    async fn open_staff_session(&self, session: &StaffSession) -> Result<(), StoreError>;

    /// The session with this token hash, if it has not been closed.
    async fn staff_session(&self, token_sha256: &str) -> Result<Option<StaffSession>, StoreError>;

    /// Marks a session used at `at` (never moving it back).
    async fn touch_staff_session(&self, token_sha256: &str, at: Timestamp) -> Result<(), StoreError>;

    /// Ends a session (signing out); whether there was one.
    async fn close_staff_session(&self, token_sha256: &str) -> Result<bool, StoreError>;

    /// Deletes sessions last used before `before` (ended by idleness); how many.
    async fn forget_idle_staff_sessions(&self, before: Timestamp) -> Result<u64, StoreError>;
}

macro_rules! staff_store {
    ($store:ty) => {
        #[async_trait]
        impl StaffSessionStore for $store {
            async fn open_staff_session(&self, s: &StaffSession) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO staff_sessions (token_sha256, staff_id, staff_key, opened_at, used_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(s.token_sha256.as_str())
                .bind(s.staff_id.as_str())
                .bind(s.staff_key.as_str())
                .bind(s.opened_at.millis())
                .bind(s.used_at.millis())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn staff_session(&self, token_sha256: &str) -> Result<Option<StaffSession>, StoreError> {
                let row = sqlx::query(
                    "SELECT token_sha256, staff_id, staff_key, opened_at, used_at FROM staff_sessions \
                     WHERE token_sha256 = $1",
                )
                .bind(token_sha256)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| {
                    Ok(StaffSession {
                        token_sha256: row.try_get("token_sha256")?,
                        staff_id: row.try_get("staff_id")?,
                        staff_key: row.try_get("staff_key")?,
                        opened_at: Timestamp(row.try_get("opened_at")?),
                        used_at: Timestamp(row.try_get("used_at")?),
                    })
                })
                .transpose()
            }

            async fn touch_staff_session(&self, token_sha256: &str, at: Timestamp) -> Result<(), StoreError> {
                sqlx::query("UPDATE staff_sessions SET used_at = $1 WHERE token_sha256 = $2 AND used_at < $1")
                    .bind(at.millis())
                    .bind(token_sha256)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn close_staff_session(&self, token_sha256: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM staff_sessions WHERE token_sha256 = $1")
                    .bind(token_sha256)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn forget_idle_staff_sessions(&self, before: Timestamp) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM staff_sessions WHERE used_at < $1")
                    .bind(before.millis())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

staff_store!(SqliteStore);
staff_store!(PostgresStore);
