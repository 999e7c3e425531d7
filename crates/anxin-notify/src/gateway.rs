//! Where texts and calls go: the operator's gateway by a signed webhook, or the log (the
//! default with no gateway configured, so a fresh machine's demo does not pile up pending
//! notifications).

use crate::http::{HttpClient, HttpError};
use crate::signature::{sign, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use anxin_core::{Channel, ElderId, IncidentId, Notice, NoticePriority, Notification, Timestamp};
use serde::{Deserialize, Serialize};

/// The webhook's JSON body: one text or call to one contact. `docs/openapi.yaml` describes
/// it (`WebhookBody`); a relay maps it onto a provider's API (`docs/configuration.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookBody {
    /// The idempotency key, the same on every try: a gateway drops a repeat.
    pub key: String,
    pub incident_id: IncidentId,
    pub elder_id: ElderId,
    pub contact: WebhookContact,
    /// The phone number.
    pub to: String,
    /// `sms` or `voice` (a `push` contact with no working subscription gets `sms`).
    pub channel: Channel,
    pub language: String,
    pub text: String,
    pub priority: NoticePriority,
    /// What the text says, as data (`type` and its fields), for a gateway that picks a
    /// provider's template instead of sending free text.
    pub notice: Notice,
    /// When the change that caused it happened (Unix ms).
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookContact {
    pub id: String,
    pub name: String,
}

impl WebhookBody {
    pub fn of(n: &Notification, channel: Channel) -> Self {
        Self {
            key: n.key.clone(),
            incident_id: n.incident_id,
            elder_id: n.elder_id.clone(),
            contact: WebhookContact { id: n.contact_id.clone(), name: n.contact_name.clone() },
            to: n.to.clone(),
            channel,
            language: n.language.clone(),
            text: n.text.clone(),
            priority: n.priority,
            notice: n.notice.clone(),
            created_at: n.created_at,
        }
    }
}

/// Why the gateway did not take a text.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the gateway answered HTTP {0}")]
    Refused(u16),
    #[error("the gateway: {0}")]
    Http(#[from] HttpError),
}

/// The texts' and calls' way out.
#[derive(Debug, Clone)]
pub enum Gateway {
    /// Writes the text to the log at INFO and counts it sent.
    Log,
    /// POSTs a signed [`WebhookBody`] to `url`: any 2xx is taken, anything else (or no answer
    /// within the timeout) is tried again.
    Webhook { url: String, secret: Vec<u8>, client: HttpClient },
}

impl Gateway {
    /// Sends `n` as `channel` (`sms` or `voice`) at `now`.
    pub async fn send(&self, n: &Notification, channel: Channel, now: Timestamp) -> Result<(), GatewayError> {
        match self {
            Gateway::Log => {
                tracing::info!(
                    key = %n.key,
                    incident = n.incident_id.0,
                    contact = %n.contact_id,
                    channel = channel.as_str(),
                    text = %n.text,
                    "notification (no gateway configured: logged, counted sent)"
                );
                Ok(())
            }
            Gateway::Webhook { url, secret, client } => {
                let body = serde_json::to_vec(&WebhookBody::of(n, channel)).expect("a webhook body serialises");
                let at = now.millis();
                let headers = [
                    ("content-type", "application/json".to_string()),
                    (IDEMPOTENCY_HEADER, n.key.clone()),
                    (TIMESTAMP_HEADER, at.to_string()),
                    (SIGNATURE_HEADER, sign(secret, at, &body)),
                ];
                let answer = client.post(url, &headers, body).await?;
                if (200..300).contains(&answer.status) {
                    Ok(())
                } else {
                    Err(GatewayError::Refused(answer.status))
                }
            }
        }
    }
}
