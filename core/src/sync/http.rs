//! The device's HTTP transport: a thin adapter from `Transport` to reqwest (rustls).
//! One client per transport, so connections are kept alive and reused between requests.

use std::time::Duration;

use super::client::{Transport, TransportError};
use super::protocol::{CONTENT_TYPE, ErrorBody};

pub struct HttpTransport {
    base_url: String,
    client: reqwest::blocking::Client,
}

impl HttpTransport {
    pub fn new(base_url: &str) -> Result<HttpTransport, TransportError> {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| TransportError::Network(e.to_string()))?;
        Ok(HttpTransport {
            base_url: base_url.trim_end_matches('/').to_string(),
            client,
        })
    }
}

impl Transport for HttpTransport {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req
            .send()
            .map_err(|e| TransportError::Network(e.without_url().to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .map_err(|e| TransportError::Network(e.without_url().to_string()))?;
        if status.is_success() {
            Ok(bytes.to_vec())
        } else {
            Err(TransportError::Status {
                status: status.as_u16(),
                body: serde_json::from_slice::<ErrorBody>(&bytes).ok(),
            })
        }
    }
}
