//! One HTTP client for the gateway and the push services: hyper 1 through hyper-util's
//! pooled client, HTTP/1.1, https by rustls (ring, Mozilla's roots from webpki-roots), and a
//! timeout on every request, body included.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("a header is not valid: {0}")]
    BadHeader(String),
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("{0}")]
    Transport(String),
}

/// A status and the first bytes of the answer's body (for the log).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct HttpClient {
    /// Shared: the pool is one for every clone.
    client: std::sync::Arc<Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client whose every request ends within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .expect("ring offers TLS 1.2 and 1.3")
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(tls);
        Self { client: std::sync::Arc::new(client), timeout }
    }

    /// POSTs `body` to `url` with `headers`; any status is an answer.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Result<Answer, HttpError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(HttpError::BadUrl(url.to_string()));
        }
        let mut request = hyper::Request::post(url)
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| HttpError::BadUrl(url.to_string()))?;
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| HttpError::BadHeader(name.to_string()))?;
            let value = HeaderValue::from_str(value).map_err(|_| HttpError::BadHeader(name.to_string()))?;
            request.headers_mut().insert(name, value);
        }
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| HttpError::Transport(cause(&e)))?;
            let status = response.status().as_u16();
            // Read (at most 64 KiB of) the answer, so the connection goes back to the pool.
            let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, exchange).await.map_err(|_| HttpError::TimedOut(self.timeout))?
    }
}

/// The innermost cause of a client error: hyper-util's own says only "client error".
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}
