//! Responders held for another zone's incident (`anxin_core::border`): the `held_for` column
//! of their row, set and cleared in the commit that holds or lets go of them, and read back
//! when their zone is resumed.

/// `write_holds` (inside a batch's transaction) for one database: the last hold of each
/// responder in the batch.
macro_rules! write_holds {
    ($db:ty) => {
        pub(crate) async fn write_holds(
            tx: &mut sqlx::Transaction<'_, $db>,
            holds: &[anxin_core::Hold],
        ) -> Result<(), sqlx::Error> {
            for h in crate::sql::latest_by(holds, |h| h.responder_id.as_str()) {
                sqlx::query("UPDATE responders SET held_for = $1 WHERE id = $2")
                    .bind(h.incident_id.map(|i| i.0 as i64))
                    .bind(h.responder_id.as_str())
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(())
        }
    };
}
pub(crate) use write_holds;
