//! Requests forwarded from other nodes, by the asking node's id for them
//! (`applied_requests`): written in the same commit as what the request did, so that the id
//! asked again (the node that took it died before answering, and its zone's new owner is
//! asked) is answered from here and not acted on twice (issue 25).

use crate::sql::{PostgresStore, SqliteStore};
use crate::StoreError;
use anxin_core::Timestamp;
use async_trait::async_trait;

/// Requests acted on. Part of every [`crate::Store`].
#[async_trait]
pub trait AppliedRequestStore: Send + Sync {
    /// The answer given to the request with this id, if one was acted on and stored.
    async fn applied_request(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// Deletes requests acted on before `before` (nobody asks again after minutes); how many.
    async fn forget_applied_requests(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// `write_requests` (inside a batch's transaction) for one database.
macro_rules! write_requests {
    ($db:ty) => {
        pub(crate) async fn write_requests(
            tx: &mut sqlx::Transaction<'_, $db>,
            requests: &[anxin_core::AppliedRequest],
        ) -> Result<(), sqlx::Error> {
            for chunk in requests.chunks(crate::sql::CHUNK / 2) {
                let mut q = sqlx::QueryBuilder::<$db>::new("INSERT INTO applied_requests (id, answer, at) ");
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.id.as_str()).push_bind(r.answer.as_str()).push_bind(r.at.millis());
                });
                q.push(" ON CONFLICT (id) DO NOTHING");
                q.build().execute(&mut **tx).await?;
            }
            Ok(())
        }
    };
}
pub(crate) use write_requests;

macro_rules! request_store {
    ($store:ty) => {
        #[async_trait]
        impl AppliedRequestStore for $store {
            async fn applied_request(&self, id: &str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT answer FROM applied_requests WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn forget_applied_requests(&self, before: Timestamp) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM applied_requests WHERE at < $1")
                    .bind(before.millis())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

request_store!(SqliteStore);
request_store!(PostgresStore);
