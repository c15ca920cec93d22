//! Serving the router over TCP with bounds on what any one client may hold: time to send
//! its request head and its body, time a kept-alive connection may sit idle, connections
//! open at once and requests handled at once. A slow or idle client (a tablet on a bad
//! line, a slowloris, a flood of idle sockets) costs a bounded amount and is let go; the
//! others, and `/healthz`, keep being served.
//!
//! HTTP/1.1 over hyper with a manual accept loop (`axum::serve` has none of these knobs).
//! Each connection's socket is wrapped in [`Watched`], which closes it when it makes no
//! progress while no request is being handled:
//! - waiting for a request (new connection, or kept alive after an answer): the request
//!   head must be complete within `header_read_timeout` of its first byte, and the first
//!   byte must come within `idle_timeout` of the previous answer (a new connection gets
//!   `header_read_timeout` from its accept);
//! - writing an answer: the client must take bytes at least every `idle_timeout`.
//!
//! While a request is handled, its body must have arrived within `body_read_timeout` of
//! its head ([`DeadlineBody`]; the handler's read fails with [`BodyTimeout`]).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use repere_core::sync::protocol::{ErrorBody, ErrorCode};

use crate::coord::throttle::address_bytes;
use crate::metrics::{Metrics, Overload};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// What one client may hold. Every field is a bound; none may be zero.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// A request head (request line and headers) must be complete within this time of its
    /// first byte (of the accept, for a new connection).
    pub header_read_timeout: Duration,
    /// A request body must have arrived within this time of its head.
    pub body_read_timeout: Duration,
    /// A kept-alive connection with no request is closed after this time; so is one whose
    /// client stops taking the answer for this long.
    pub idle_timeout: Duration,
    /// Connections open at once; past it, a new connection gets `503` and is closed.
    pub max_connections: usize,
    /// Connections open at once from one address, so that one client cannot take them
    /// all; past it, `503` as above. Not applied to `shared_address`.
    pub max_connections_per_address: usize,
    /// The reverse proxy's address (`--trusted-proxy`): every client comes from it, so
    /// only the overall limit applies to it.
    pub shared_address: Option<IpAddr>,
    /// Requests handled at once (`/healthz` aside); more wait for a turn.
    pub max_requests: usize,
    /// How long a request waits for a turn before it gets `503`.
    pub queue_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(20),
            max_connections: 512,
            // Tablets behind one mobile operator's NAT share an address: room for a
            // département's teams, not for one client to hold every connection.
            max_connections_per_address: 64,
            shared_address: None,
            max_requests: 64,
            queue_timeout: Duration::from_secs(10),
        }
    }
}

impl ServeLimits {
    /// Refuses limits that would disable a bound or stop the server from serving at all.
    pub fn check(&self) -> Result<(), String> {
        let times = [
            ("header read timeout", self.header_read_timeout),
            ("body read timeout", self.body_read_timeout),
            ("idle timeout", self.idle_timeout),
            ("queue timeout", self.queue_timeout),
        ];
        for (what, t) in times {
            if t.is_zero() {
                return Err(format!("the {what} must be at least 1 second"));
            }
        }
        if self.max_connections == 0
            || self.max_requests == 0
            || self.max_connections_per_address == 0
        {
            return Err("the connection and request limits must be at least 1".into());
        }
        if self.max_requests > Semaphore::MAX_PERMITS || self.max_connections > (1 << 20) {
            return Err("the connection or request limit is too large".into());
        }
        Ok(())
    }
}

/// How long requests in flight may take to finish once a shutdown is asked.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Refusals (`503` to connections past the limit) being written at once; past it, a
/// connection is closed without an answer.
const MAX_REFUSALS: usize = 64;
/// Time given to write a refusal and let the client read it.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// A connection's read buffer: a request head larger than this gets `431`, and a client
/// holds no more than this much of the server's memory before its request is handled.
const MAX_BUFFER_BYTES: usize = 64 * 1024;
/// Answered outside the request limit: a probe must see a busy server as alive.
const HEALTH_PATH: &str = "/healthz";

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then stops
/// accepting and gives requests in flight [`SHUTDOWN_GRACE`] to finish (each commits or
/// rolls back as a whole). Each `503` of a limit is counted in `metrics` (`/metrics`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    limits.check()?;
    let limits = Arc::new(limits);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let requests = Arc::new(Semaphore::new(limits.max_requests));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let graceful = GracefulShutdown::new();
    let refused_connections = Throttled::default();
    let per_address = PerAddress::new(limits.max_connections_per_address, limits.shared_address);
    let refused_requests = Arc::new(Throttled::default());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            metrics.overloaded(Overload::Connections);
            if let Some(refused) = refused_connections.tick() {
                tracing::warn!(
                    limit = limits.max_connections,
                    refused,
                    "connections refused: too many open"
                );
            }
            refuse_later(&refusals, stream, TOO_MANY_CONNECTIONS);
            continue;
        };
        let Some(slot) = per_address.take(remote.ip()) else {
            metrics.overloaded(Overload::ConnectionsPerAddress);
            if let Some(refused) = refused_connections.tick() {
                tracing::warn!(
                    limit = limits.max_connections_per_address,
                    refused,
                    "connections refused: too many open from one address"
                );
            }
            refuse_later(&refusals, stream, TOO_MANY_FROM_ADDRESS);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState::default());
        let io = TokioIo::new(Watched::new(stream, state.clone(), &limits));
        let service = RequestService {
            app: app.clone(),
            remote,
            state,
            requests: requests.clone(),
            refused: refused_requests.clone(),
            limits: limits.clone(),
            metrics: metrics.clone(),
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            // `Watched` enforces the head and idle times; hyper's own clock (which starts
            // when the connection waits for a request) is only a backstop behind it.
            .header_read_timeout(limits.header_read_timeout + limits.idle_timeout)
            .keep_alive(true)
            .max_buf_size(MAX_BUFFER_BYTES)
            .serve_connection(io, hyper::service::service_fn(move |r| service.call(r)));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop((permit, slot));
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("requests still in flight after the shutdown grace time: stopping anyway");
        }
    }
    Ok(())
}

/// A failed accept: a connection that died before it was accepted is nothing; anything
/// else (out of file descriptors) is waited out rather than spun on.
async fn accept_failed(e: &io::Error) {
    match e.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset => {}
        _ => {
            tracing::error!(error = %e, "accepting connections failed; retrying in 1 s");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

const TOO_MANY_CONNECTIONS: &str =
    "the server has too many open connections: try again in a few seconds";
const TOO_MANY_FROM_ADDRESS: &str =
    "too many connections are open from your address: try again in a few seconds";

/// Writes a refusal in its own task, if fewer than [`MAX_REFUSALS`] are being written;
/// else the connection is just closed.
fn refuse_later(refusals: &Arc<Semaphore>, stream: TcpStream, message: &'static str) {
    if let Ok(refusal) = refusals.clone().try_acquire_owned() {
        tokio::spawn(async move {
            refuse(stream, message).await;
            drop(refusal);
        });
    }
}

/// Connections open per client address.
struct PerAddress {
    open: Arc<Mutex<HashMap<Vec<u8>, usize>>>,
    max: usize,
    shared: Option<IpAddr>,
}

/// One connection counted against its address until dropped.
struct AddressSlot {
    open: Arc<Mutex<HashMap<Vec<u8>, usize>>>,
    /// `None` for the shared address, which is not counted.
    ip: Option<Vec<u8>>,
}

impl PerAddress {
    fn new(max: usize, shared: Option<IpAddr>) -> PerAddress {
        PerAddress {
            open: Arc::default(),
            max,
            shared: shared.map(|ip| ip.to_canonical()),
        }
    }

    fn take(&self, ip: IpAddr) -> Option<AddressSlot> {
        let ip = ip.to_canonical();
        if self.shared == Some(ip) {
            return Some(AddressSlot {
                open: self.open.clone(),
                ip: None,
            });
        }
        let ip = address_bytes(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip.clone()).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            open: self.open.clone(),
            ip: Some(ip),
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let Some(ip) = self.ip.take() else { return };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        // Entries go with their last connection: the map holds open addresses only.
        if let Entry::Occupied(mut e) = open.entry(ip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

/// `503` to a connection past a limit, then close; at most [`REFUSAL_TIME`].
async fn refuse(mut stream: TcpStream, message: &str) {
    let body = error_json(ErrorCode::RateLimited, message);
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.shutdown().await?;
        // Read what the client sent until it closes, so that closing does not reset the
        // connection before the client has read the answer.
        let mut sink = [0u8; 4096];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await?;
            if n == 0 {
                return Ok::<(), io::Error>(());
            }
        }
    })
    .await;
}

fn error_json(code: ErrorCode, message: &str) -> Vec<u8> {
    serde_json::to_vec(&ErrorBody {
        error: code,
        message: message.to_string(),
        versions: None,
    })
    .unwrap_or_default()
}

/// Counts refusals and says when to log them: at most once per [`LOG_EVERY`], so that a
/// flood does not flood the log too.
#[derive(Default)]
struct Throttled {
    count: AtomicU64,
    last_log: std::sync::Mutex<Option<Instant>>,
}

const LOG_EVERY: Duration = Duration::from_secs(10);

impl Throttled {
    /// Counts one; returns how many were counted since the last log when it is time to log.
    fn tick(&self) -> Option<u64> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            return None;
        }
        *last = Some(now);
        Some(self.count.swap(0, Ordering::Relaxed))
    }
}

/// What a connection's socket wrapper needs to know of the requests on it.
#[derive(Default)]
struct ConnState {
    /// Requests being handled (from their head to their answer, body reading included).
    in_flight: AtomicUsize,
}

/// Counts a request as in flight until dropped.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn new(state: Arc<ConnState>) -> InFlight {
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct RequestService {
    app: Router,
    remote: SocketAddr,
    state: Arc<ConnState>,
    requests: Arc<Semaphore>,
    refused: Arc<Throttled>,
    limits: Arc<ServeLimits>,
    metrics: Arc<Metrics>,
}

impl RequestService {
    /// Called by hyper once a request head is complete: from here until the answer is
    /// ready, the request is in flight.
    fn call(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send + use<> {
        let in_flight = InFlight::new(self.state.clone());
        let deadline = Instant::now() + self.limits.body_read_timeout;
        let mut request = request.map(|b| Body::new(DeadlineBody::new(b, deadline)));
        request.extensions_mut().insert(ConnectInfo(self.remote));
        let app = self.app.clone();
        let requests = self.requests.clone();
        let refused = self.refused.clone();
        let metrics = self.metrics.clone();
        let queue_timeout = self.limits.queue_timeout;
        async move {
            let path = request.uri().path();
            let turn = if path == HEALTH_PATH {
                None
            } else {
                match tokio::time::timeout(queue_timeout, requests.acquire_owned()).await {
                    Ok(Ok(permit)) => Some(permit),
                    // Timed out waiting, or (never: it is not closed) the semaphore closed.
                    Ok(Err(_)) | Err(_) => {
                        metrics.overloaded(Overload::RequestQueue);
                        if let Some(refused) = refused.tick() {
                            tracing::warn!(refused, "requests refused: too many in flight");
                        }
                        let busy = busy(path.starts_with("/v1/"));
                        drop(in_flight);
                        return Ok(busy);
                    }
                }
            };
            let response = app.oneshot(request).await;
            drop(turn);
            drop(in_flight);
            response
        }
    }
}

/// `503`: the request waited past the queue timeout.
fn busy(api: bool) -> Response<Body> {
    let (content_type, body) = if api {
        (
            "application/json",
            error_json(
                ErrorCode::RateLimited,
                "the server is busy: try again in a few seconds",
            ),
        )
    } else {
        (
            "text/plain; charset=utf-8",
            "Serveur occupé : réessayez dans quelques secondes.\n"
                .as_bytes()
                .to_vec(),
        )
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// The error a request body's read fails with when the body came too slowly.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received in time")]
pub struct BodyTimeout;

/// Whether `error` (a body-reading failure, e.g. an extractor's rejection) comes from a
/// body that did not arrive in time.
pub fn is_body_timeout(error: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<BodyTimeout>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// A request body that fails with [`BodyTimeout`] once its deadline has passed.
pub struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, deadline: Instant) -> DeadlineBody {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map_err(|e| Box::new(e) as Self::Error)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Where a connection is, for [`Watched`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing since the previous answer's last byte; the deadline is `idle_timeout` on.
    Idle,
    /// A request head is arriving; the deadline is `header_read_timeout` from its first
    /// byte (from the accept, for a new connection).
    Head,
    /// A request is being handled: no deadline here (its body has its own).
    Busy,
}

/// A connection's socket that fails with `TimedOut` when the connection makes no
/// progress in time while no request is being handled (see the module's notes).
struct Watched {
    io: TcpStream,
    state: Arc<ConnState>,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
}

impl Watched {
    fn new(io: TcpStream, state: Arc<ConnState>, limits: &ServeLimits) -> Watched {
        Watched {
            io,
            state,
            phase: Phase::Head,
            deadline: Box::pin(tokio::time::sleep(limits.header_read_timeout)),
            header_read_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
        }
    }

    fn set_deadline(&mut self, after: Duration) {
        let at = Instant::now() + after;
        self.deadline.as_mut().reset(at);
    }

    /// Brings the phase up to date with the requests in flight.
    fn observe(&mut self) {
        let busy = self.state.in_flight.load(Ordering::SeqCst) > 0;
        match (self.phase, busy) {
            (_, true) => self.phase = Phase::Busy,
            (Phase::Busy, false) => {
                // The answer is ready: from now on its writing must make progress, and
                // then the next request must come.
                self.phase = Phase::Idle;
                self.set_deadline(self.idle_timeout);
            }
            (Phase::Idle | Phase::Head, false) => {}
        }
    }

    fn on_read(&mut self, bytes: usize) {
        if bytes > 0 && self.phase == Phase::Idle {
            self.phase = Phase::Head;
            self.set_deadline(self.header_read_timeout);
        }
    }

    fn on_write(&mut self, bytes: usize) {
        if bytes > 0 && self.phase == Phase::Idle {
            self.set_deadline(self.idle_timeout);
        }
    }

    /// With the socket not ready: fails once the deadline has passed (and registers the
    /// task to be woken then).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.phase != Phase::Busy && self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn timed_out(phase: Phase) -> io::Error {
    let what = match phase {
        Phase::Head => "request head not received in time",
        Phase::Idle | Phase::Busy => "connection idle for too long",
    };
    io::Error::new(io::ErrorKind::TimedOut, what)
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.observe();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.on_read(buf.filled().len() - before);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(timed_out(this.phase))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Watched {
    /// What a write poll becomes: bytes written are counted, a write that stays pending
    /// past the deadline is a timeout.
    fn written(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                self.on_write(n);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out(self.phase))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.observe();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.written(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.observe();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.written(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_that_disable_a_bound_are_refused() {
        assert_eq!(ServeLimits::default().check(), Ok(()));
        let zero_time = ServeLimits {
            header_read_timeout: Duration::ZERO,
            ..ServeLimits::default()
        };
        assert!(zero_time.check().is_err());
        let no_requests = ServeLimits {
            max_requests: 0,
            ..ServeLimits::default()
        };
        assert!(no_requests.check().is_err());
        let no_connections = ServeLimits {
            max_connections: 0,
            ..ServeLimits::default()
        };
        assert!(no_connections.check().is_err());
    }

    #[test]
    fn connections_are_counted_per_address_and_given_back() {
        let proxy: IpAddr = "10.0.0.1".parse().expect("ip");
        let limit = PerAddress::new(2, Some(proxy));
        let one: IpAddr = "192.0.2.7".parse().expect("ip");
        let (a, b) = (limit.take(one), limit.take(one));
        assert!(a.is_some() && b.is_some());
        assert!(limit.take(one).is_none(), "a third from the same address");
        assert!(limit.take("192.0.2.8".parse().expect("ip")).is_some());
        drop(a);
        let again = limit.take(one);
        assert!(again.is_some(), "a slot given back");
        // The same IPv4 address written as IPv6 is the same client; so is one /64.
        assert!(
            limit
                .take("::ffff:192.0.2.7".parse().expect("ip"))
                .is_none()
        );
        let v6 = |s: &str| s.parse::<IpAddr>().expect("ip");
        let _held = (limit.take(v6("2001:db8::1")), limit.take(v6("2001:db8::2")));
        assert!(limit.take(v6("2001:db8::ffff:1")).is_none());
        assert!(limit.take(v6("2001:db8:0:1::1")).is_some(), "another /64");
        // The reverse proxy carries every client.
        let through_proxy: Vec<_> = (0..10).map(|_| limit.take(proxy)).collect();
        assert!(through_proxy.iter().all(Option::is_some));
        drop(through_proxy);
        assert!(
            limit
                .open
                .lock()
                .expect("lock")
                .get(&address_bytes(proxy))
                .is_none()
        );
    }

    #[test]
    fn a_body_timeout_is_found_under_the_errors_that_wrap_it() {
        let wrapped = axum::Error::new(axum::Error::new(BodyTimeout));
        assert!(is_body_timeout(&wrapped));
        let other = axum::Error::new(io::Error::other("reset"));
        assert!(!is_body_timeout(&other));
    }

    #[test]
    fn refusals_are_logged_at_most_every_ten_seconds_with_their_count() {
        let t = Throttled::default();
        assert_eq!(t.tick(), Some(1));
        assert_eq!(t.tick(), None);
        assert_eq!(t.tick(), None);
        *t.last_log.lock().expect("lock") = Instant::now().checked_sub(LOG_EVERY);
        assert_eq!(t.tick(), Some(3));
    }
}
