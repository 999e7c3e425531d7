//! Offers across zone borders (`anxin_core::border`), as stored: responders held for another
//! zone's incident (the `held_for` column of their row, set and cleared in the commit that
//! holds or lets go of them, and read back when their zone is resumed), and the messages
//! between zones' owners, filed in the receiving zone's inbox by the commit that caused them
//! (so fenced with it) and read from it like a device's message.

/// The time a message between zones' owners is filed at, on this machine's clock (the inbox
/// is read oldest first).
pub(crate) fn filed_at() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

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

/// `write_across` (inside a batch's transaction) for one database: each message filed in its
/// zone's inbox; `$notify`: each zone announced (`pg_notify('anxin_inbox', zone)`, heard when
/// the transaction commits), as a filing by an ingest session is.
macro_rules! write_across {
    ($db:ty, $notify:expr) => {
        pub(crate) async fn write_across(
            tx: &mut sqlx::Transaction<'_, $db>,
            across: &[anxin_core::Across],
        ) -> Result<(), sqlx::Error> {
            if across.is_empty() {
                return Ok(());
            }
            let at = crate::border::filed_at();
            let mut zones = Vec::new();
            for a in across {
                let payload = serde_json::to_vec(&a.message).expect("a border message is JSON");
                let filed = sqlx::query(
                    "INSERT INTO inbox (device_id, msg_key, zone, topic, payload, received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, msg_key) DO NOTHING",
                )
                .bind(anxin_core::border::INBOX_SENDER)
                .bind(a.message.inbox_key())
                .bind(i32::from(a.to.number()))
                .bind(anxin_core::border::INBOX_TOPIC)
                .bind(payload)
                .bind(at)
                .execute(&mut **tx)
                .await?;
                if filed.rows_affected() > 0 && !zones.contains(&a.to) {
                    zones.push(a.to);
                }
            }
            if $notify {
                for z in zones {
                    sqlx::query("SELECT pg_notify('anxin_inbox', $1)")
                        .bind(z.number().to_string())
                        .execute(&mut **tx)
                        .await?;
                }
            }
            Ok(())
        }
    };
}
pub(crate) use write_across;
