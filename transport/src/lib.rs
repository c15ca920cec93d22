//! The tablet's HTTP transport: core's [`Transport`] over reqwest (rustls), and
//! [`SyncClient`], a store with its one HTTP client. Core itself does no network I/O;
//! this crate is the only network code on the device side.
//!
//! - One reqwest client per transport, and one transport per store ([`SyncClient`]), so
//!   connections are kept alive and TLS sessions resumed from one sync to the next.
//! - A request in flight stops as soon as its sync is cancelled.
//! - HTTPS only: an `http://` address is refused unless it is this machine (127.0.0.0/8,
//!   `::1`, `localhost`: tests and a server on the same host) or the caller opts in with
//!   [`HttpTransport::allow_insecure_http_for_development`]. The bearer token and the
//!   records never travel in clear to another machine by mistake.
//! - Redirects are not followed: the protocol never redirects, and following one could
//!   send the token somewhere else, or downgrade to `http://`.
//! - Server certificates are checked by the platform's verifier (Android's and iOS's
//!   trust stores; see android/README.md for the Android initialisation).

mod client;

use std::net::IpAddr;
use std::time::Duration;

pub use client::{ClientError, SyncClient};
use repere_core::sync::protocol::{CONTENT_TYPE, ErrorBody};
use repere_core::sync::{Cancellation, Transport, TransportError};
use reqwest::Url;
use reqwest::redirect::Policy;
use url::Host;

/// Why a transport could not be made for an address. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// Not an `https://` (or `http://`) address with a host, or one with a user name,
    /// password, query or fragment in it.
    #[error("the server address is not a valid https:// address")]
    InvalidAddress,
    /// `http://` to another machine: the token and the records would travel in clear.
    #[error("the server address uses http:// to another machine: use https://")]
    InsecureAddress,
    /// The HTTP client could not be set up (its TLS configuration, an unreadable extra
    /// root certificate, its worker thread).
    #[error("the HTTP client could not be set up: {0}")]
    Client(String),
}

/// Whether `http://` to another machine is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cleartext {
    LoopbackOnly,
    AllowedForDevelopment,
}

/// How often a request in flight looks at its cancellation flag.
const CANCEL_POLL: Duration = Duration::from_millis(20);

pub struct HttpTransport {
    base_url: String,
    client: reqwest::Client,
    /// One worker thread drives the requests; callers block on it, from any thread.
    runtime: tokio::runtime::Runtime,
}

impl HttpTransport {
    /// A transport to the server at `base_url` (e.g. `https://sync.example.org`, maybe with
    /// a path prefix). `http://` is accepted only to this machine.
    pub fn new(base_url: &str) -> Result<HttpTransport, SetupError> {
        HttpTransport::build(base_url, Cleartext::LoopbackOnly, None)
    }

    /// Like [`HttpTransport::new`], but also accepts `http://` to another machine (a
    /// development server on the local network). The token and the records then travel
    /// in clear: never for real data.
    pub fn allow_insecure_http_for_development(
        base_url: &str,
    ) -> Result<HttpTransport, SetupError> {
        HttpTransport::build(base_url, Cleartext::AllowedForDevelopment, None)
    }

    /// Like [`HttpTransport::new`], also trusting the root certificate `pem` (a server
    /// behind an organisation's own certificate authority, or a test endpoint).
    pub fn with_extra_root(base_url: &str, pem: &[u8]) -> Result<HttpTransport, SetupError> {
        let root =
            reqwest::Certificate::from_pem(pem).map_err(|e| SetupError::Client(e.to_string()))?;
        HttpTransport::build(base_url, Cleartext::LoopbackOnly, Some(root))
    }

    /// The server's address, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn build(
        base_url: &str,
        cleartext: Cleartext,
        extra_root: Option<reqwest::Certificate>,
    ) -> Result<HttpTransport, SetupError> {
        let base_url = base_url.trim().trim_end_matches('/');
        check_address(base_url, cleartext)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(Policy::none());
        if let Some(root) = extra_root {
            builder = builder.add_root_certificate(root);
        }
        let client = builder
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("repere-http")
            .enable_all()
            .build()
            .map_err(|e| SetupError::Client(e.to_string()))?;
        Ok(HttpTransport {
            base_url: base_url.to_string(),
            client,
            runtime,
        })
    }

    /// Sends on the runtime's worker thread, which also drives the connections: when the
    /// answer is read there, its connection is already back in the pool for the next
    /// request. Read on the calling thread instead, the next request could be sent before
    /// the worker had put the connection back, and open another one (a new TLS handshake).
    fn spawn_send(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> tokio::task::JoinHandle<Result<Vec<u8>, TransportError>> {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        self.runtime.spawn(send(req))
    }
}

async fn joined(
    task: tokio::task::JoinHandle<Result<Vec<u8>, TransportError>>,
) -> Result<Vec<u8>, TransportError> {
    task.await
        .unwrap_or_else(|e| Err(TransportError::Network(format!("request task failed: {e}"))))
}

async fn send(req: reqwest::RequestBuilder) -> Result<Vec<u8>, TransportError> {
    let resp = req
        .send()
        .await
        .map_err(|e| TransportError::Network(e.without_url().to_string()))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
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

/// Checks that `base_url` is an address the transport may send a token to.
fn check_address(base_url: &str, cleartext: Cleartext) -> Result<(), SetupError> {
    let url = Url::parse(base_url).map_err(|_| SetupError::InvalidAddress)?;
    let host = url.host().ok_or(SetupError::InvalidAddress)?;
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(SetupError::InvalidAddress);
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if cleartext == Cleartext::AllowedForDevelopment || is_loopback(&host) => Ok(()),
        "http" => Err(SetupError::InsecureAddress),
        _ => Err(SetupError::InvalidAddress),
    }
}

/// This machine: 127.0.0.0/8, `::1` (also as `::ffff:127.x.y.z`) or `localhost`.
fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).to_canonical().is_loopback(),
        // The URL parser lowercases domains.
        Host::Domain(name) => *name == "localhost",
    }
}

impl Transport for HttpTransport {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let task = self.spawn_send(path, token, body);
        self.runtime.block_on(joined(task))
    }

    fn post_cancellable(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        cancel: &Cancellation,
    ) -> Result<Vec<u8>, TransportError> {
        let task = self.spawn_send(path, token, body);
        let abort = task.abort_handle();
        self.runtime.block_on(async {
            tokio::select! {
                answer = joined(task) => answer,
                () = cancelled(cancel) => {
                    abort.abort();
                    Err(TransportError::Cancelled)
                }
            }
        })
    }
}

/// Resolves once `cancel` is set. Dropping the request future closes its connection.
async fn cancelled(cancel: &Cancellation) {
    while !cancel.is_cancelled() {
        tokio::time::sleep(CANCEL_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> Option<SetupError> {
        HttpTransport::new(url).err()
    }

    #[test]
    fn https_is_accepted_to_any_host() {
        for url in [
            "https://sync.example.org",
            "https://sync.example.org/",
            "https://sync.example.org:8443/repere",
            "https://192.0.2.10",
            "https://[2001:db8::1]:443",
        ] {
            assert_eq!(refused(url), None, "{url}");
        }
        let t = HttpTransport::new(" https://sync.example.org/repere/ ").expect("https");
        assert_eq!(t.base_url(), "https://sync.example.org/repere");
    }

    #[test]
    fn http_is_accepted_to_this_machine() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://localhost:8080/",
            "http://LOCALHOST",
            "http://[::1]:8080",
            "http://[::ffff:127.0.0.1]:8080",
        ] {
            assert_eq!(refused(url), None, "{url}");
        }
    }

    #[test]
    fn http_to_another_machine_is_refused() {
        for url in [
            "http://sync.example.org",
            "http://10.0.2.2:8080",
            "http://192.168.1.20",
            "http://[2001:db8::1]",
            "http://[::ffff:192.0.2.1]",
            "http://localhost.example.org",
            "http://127.0.0.1.example.org",
        ] {
            assert_eq!(refused(url), Some(SetupError::InsecureAddress), "{url}");
        }
    }

    #[test]
    fn the_development_opt_in_accepts_http_to_another_machine() {
        for url in ["http://192.168.1.20:8080", "http://dev.example.org"] {
            let t = HttpTransport::allow_insecure_http_for_development(url);
            assert!(t.is_ok(), "{url}");
        }
        // It accepts no other scheme, and no malformed address.
        assert_eq!(
            HttpTransport::allow_insecure_http_for_development("ftp://dev.example.org").err(),
            Some(SetupError::InvalidAddress)
        );
    }

    #[test]
    fn addresses_that_are_not_server_urls_are_refused() {
        for url in [
            "",
            "sync.example.org",
            "https://",
            "ftp://sync.example.org",
            "file:///etc/passwd",
            "https://user:secret@sync.example.org",
            "https://sync.example.org/?next=x",
            "https://sync.example.org/#x",
            "mailto:a@example.org",
        ] {
            assert_eq!(refused(url), Some(SetupError::InvalidAddress), "{url:?}");
        }
    }

    /// A loopback HTTP/1.1 server answering each request with the next canned answer;
    /// returns its address and, when done, how many connections it accepted.
    fn canned_server(
        answers: Vec<String>,
    ) -> (String, std::thread::JoinHandle<(usize, Vec<String>)>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            let mut connections = 0;
            let mut requests = Vec::new();
            while answers.len() > 0 {
                let (stream, _) = listener.accept().expect("accept");
                connections += 1;
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut writer = stream;
                while answers.len() > 0 {
                    let mut head = String::new();
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().expect("length");
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    if head.is_empty() {
                        break;
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).expect("body");
                    requests.push(head);
                    let answer = answers.next().expect("an answer");
                    writer.write_all(answer.as_bytes()).expect("answer");
                }
            }
            (connections, requests)
        });
        (url, handle)
    }

    #[test]
    fn posts_reuse_one_connection_and_map_error_answers() {
        let answer = |status: &str, headers: &str, body: &str| {
            format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let (url, server) = canned_server(vec![
            answer("200 OK", "", "RP"),
            answer(
                "403 Forbidden",
                "Content-Type: application/json\r\n",
                r#"{"error":"invalid_enrolment_code","message":"no code"}"#,
            ),
            answer(
                "307 Temporary Redirect",
                "Location: http://192.0.2.1/v1/sync\r\n",
                "",
            ),
        ]);
        let t = HttpTransport::new(&url).expect("loopback http");
        assert_eq!(
            t.post("/v1/sync", Some("tok"), b"RP\x02\x00".to_vec()),
            Ok(b"RP".to_vec())
        );
        match t.post("/v1/enrol", None, vec![1, 2, 3]) {
            Err(TransportError::Status {
                status: 403,
                body: Some(body),
            }) => {
                assert_eq!(
                    body.error,
                    repere_core::sync::protocol::ErrorCode::InvalidEnrolmentCode
                );
            }
            other => panic!("expected a 403 with its body, got {other:?}"),
        }
        // A redirect is an answer like any other, never followed.
        assert!(matches!(
            t.post("/v1/sync", Some("tok"), vec![]),
            Err(TransportError::Status {
                status: 307,
                body: None
            })
        ));
        let (connections, requests) = server.join().expect("server");
        assert_eq!(connections, 1, "one connection, kept alive");
        assert!(requests[0].starts_with("POST /v1/sync HTTP/1.1"));
        assert!(
            requests[0]
                .to_ascii_lowercase()
                .contains("authorization: bearer tok")
        );
        assert!(requests[0].contains(CONTENT_TYPE));
        assert!(!requests[1].to_ascii_lowercase().contains("authorization"));
    }

    #[test]
    fn a_cancelled_request_stops_waiting_for_its_answer() {
        // A server that accepts and never answers: only the cancellation can end the post.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let silent = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
        let t = HttpTransport::new(&url).expect("loopback http");
        let cancel = Cancellation::new();
        let stopper = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                cancel.cancel();
            })
        };
        assert_eq!(
            t.post_cancellable("/v1/sync", Some("tok"), vec![1], &cancel),
            Err(TransportError::Cancelled)
        );
        stopper.join().expect("stopper");
        drop(silent.join().expect("server"));
    }
}
