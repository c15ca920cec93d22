//! The HTTP adapter: routes, body limits, bearer authentication, the per-address rate
//! limit on enrolment, and the mapping of hub errors to status codes with core's JSON
//! `ErrorBody`. Protocol logic lives in `hub`; this file only moves bytes, and every
//! decoding, Automerge or SQLite step runs on the blocking pool, off the async workers.
//! The coordinators' pages (`web`) are merged into the same router, and every request's
//! time to answer is measured there (`metrics`), as are the outcomes of syncs and
//! enrolments; `/metrics` serves them to a token or to loopback only, `/healthz` says
//! whether the database answers. Connection limits and timeouts are in `serve`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use repere_core::sync::protocol::{
    self, CONTENT_TYPE, DecodeError, ENROL_PATH, EnrolRequest, ErrorBody, ErrorCode, RejectCode,
    SYNC_PATH, SyncRequest,
};
use subtle::ConstantTimeEq;

use crate::coord::Workspace;
use crate::hub::{Hub, HubError, LABEL_MAX_CHARS, SyncStats};
use crate::metrics::{DatabaseFigures, Metrics, RouteGroup, silent_tablets};
use crate::storage::Bucket;
use crate::web;
use crate::{secret, serve};

/// Ops probes: not counted in the latency of any route group.
const HEALTH_PATH: &str = "/healthz";
const METRICS_PATH: &str = "/metrics";

/// The largest enrolment request body: a code and a device label fit in it several times
/// over. Larger ones get 413 `too_large`, before anything is decoded.
pub const ENROL_MAX_BODY_BYTES: usize = 1024;
/// The largest enrolment message once inflated (a deflated body stops inflating here).
const ENROL_MAX_MESSAGE_BYTES: usize = 2 * ENROL_MAX_BODY_BYTES;

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Request bodies larger than this are refused with 413 `too_large` (enrolment
    /// requests have their own, smaller limit: `ENROL_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Enrolment attempts per client address and minute.
    pub enrol_per_minute: u32,
    /// The pages are reached over plain HTTP (`--insecure-http`): no `Secure`/`__Host-`
    /// cookies, no HSTS. Off by default: the server is meant to sit behind TLS.
    pub insecure_http: bool,
    /// The coordinators' pages: trusted reverse proxy, session lifetimes, public address.
    pub pages: web::PagesConfig,
    /// Who may read `/metrics`, and what counts as a silent tablet.
    pub metrics: MetricsConfig,
    /// How long `/healthz` waits for the database's locks before it calls them stuck
    /// (`--health-lock-timeout-secs`). A push of 1,000 records holds the write lock about
    /// half a second; the default leaves room for the largest request on a loaded machine.
    pub health_lock_timeout: Duration,
}

/// `/metrics`: with a token, only a request bearing it; without one, only a client on
/// loopback (not one relayed by the trusted proxy from elsewhere). Anyone else gets the
/// same 404 as an unknown address.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `--metrics-token`.
    pub token: Option<String>,
    /// A tablet is silent after this many days without a sync (`--silent-tablet-days`).
    pub silent_days: u32,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            token: None,
            silent_days: 7,
        }
    }
}

impl std::fmt::Debug for MetricsConfig {
    /// Without the token, so that no debug print of a configuration shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("silent_days", &self.silent_days)
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 8 * 1024 * 1024,
            enrol_per_minute: 10,
            insecure_http: false,
            pages: web::PagesConfig::default(),
            metrics: MetricsConfig::default(),
            health_lock_timeout: Duration::from_secs(5),
        }
    }
}

struct AppState {
    hub: Arc<Hub>,
    /// Enrolment attempts per client address, counted in the database.
    enrol_bucket: Bucket,
    metrics: Arc<Metrics>,
    metrics_config: MetricsConfig,
    health_lock_timeout: Duration,
    /// The last health check's end and result; held while a check runs, so that checks
    /// run one at a time however many probes come (`/healthz` is open to anyone and
    /// outside the request limit).
    health: tokio::sync::Mutex<Option<(Instant, Result<(), &'static str>)>>,
    trusted_proxy: Option<IpAddr>,
    /// Pages served behind TLS (for the disguised 404's headers).
    tls: bool,
}

/// The sync API and, on the same port, the coordinators' pages (`web`), counting into
/// `metrics`, which `serve::serve` counts its limits' refusals into too (they happen
/// before any request reaches the router).
pub fn router(hub: Arc<Hub>, config: &HttpConfig, metrics: Arc<Metrics>) -> Router {
    let workspace = Arc::new(Workspace::with_sessions(hub.clone(), config.pages.sessions));
    let state = Arc::new(AppState {
        hub,
        enrol_bucket: Bucket {
            burst: f64::from(config.enrol_per_minute.max(1)),
            per_second: f64::from(config.enrol_per_minute.max(1)) / 60.0,
        },
        metrics: metrics.clone(),
        metrics_config: config.metrics.clone(),
        health_lock_timeout: config.health_lock_timeout,
        health: tokio::sync::Mutex::new(None),
        trusted_proxy: config.pages.trusted_proxy.map(|ip| ip.to_canonical()),
        tls: !config.insecure_http,
    });
    Router::new()
        .route(HEALTH_PATH, get(healthz))
        // Every method: a refused one must look like an unknown address, not a 405.
        .route(METRICS_PATH, any(metrics_page))
        .route(
            ENROL_PATH,
            post(enrol).layer(DefaultBodyLimit::max(ENROL_MAX_BODY_BYTES)),
        )
        .route(SYNC_PATH, post(sync))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
        .merge(web::router(workspace, config.insecure_http, &config.pages))
        .layer(middleware::from_fn_with_state(metrics, timed))
}

/// Measures each request's time to its answer's head (a CSV export's body streams after).
async fn timed(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let group = match request.uri().path() {
        SYNC_PATH => Some(RouteGroup::Sync),
        ENROL_PATH => Some(RouteGroup::Enrol),
        HEALTH_PATH | METRICS_PATH => None,
        _ => Some(RouteGroup::Pages),
    };
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(group) = group {
        metrics.observe(group, started.elapsed());
    }
    response
}

/// `200 ok`, or `503` with a short reason: the database does not answer, or its write
/// lock has been held past `health_lock_timeout`. Open to anyone: it says nothing else.
/// A probe that arrives while a check runs gets that check's result.
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let arrived = Instant::now();
    let mut last = state.health.lock().await;
    let result = match *last {
        Some((ended, result)) if ended >= arrived => result,
        _ => {
            let hub = state.hub.clone();
            let within = state.health_lock_timeout;
            let checked = tokio::task::spawn_blocking(move || hub.storage().health(within))
                .await
                .unwrap_or(Err("health check failed"));
            if let Err(reason) = checked {
                tracing::warn!(reason, "health check failed");
            }
            *last = Some((Instant::now(), checked));
            checked
        }
    };
    drop(last);
    match result {
        Ok(()) => "ok".into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason).into_response(),
    }
}

/// Whether this request may read the metrics (see [`MetricsConfig`]).
fn metrics_allowed(state: &AppState, headers: &HeaderMap, extensions: &Extensions) -> bool {
    if let Some(token) = &state.metrics_config.token {
        // Compared as hashes: in constant time whatever the lengths.
        let given = bearer(headers).map(|t| secret::sha256(t.as_bytes()));
        return given.is_some_and(|g| bool::from(g.ct_eq(&secret::sha256(token.as_bytes()))));
    }
    let Some(peer) = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
    else {
        return false;
    };
    let client = if state.trusted_proxy == Some(peer) {
        // Relayed: the client is whoever the proxy says, and nobody if it says nothing.
        web::forwarded_for(headers).map(|ip| ip.to_canonical())
    } else {
        Some(peer)
    };
    client.is_some_and(|ip| ip.is_loopback())
}

async fn metrics_page(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let readable = matches!(*request.method(), Method::GET | Method::HEAD)
        && metrics_allowed(&state, request.headers(), request.extensions());
    if !readable {
        return web::not_found_response(state.tls);
    }
    let hub = state.hub.clone();
    let days = state.metrics_config.silent_days;
    let figures = blocking(move || {
        let size_bytes = hub.storage().size_bytes()?;
        let devices = hub.storage().read_with(|tx| tx.devices(None))?;
        Ok::<_, HubError>(DatabaseFigures {
            size_bytes,
            silent_tablets: silent_tablets(&devices, hub.now(), days),
        })
    })
    .await;
    match figures {
        Ok(figures) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            state.metrics.render(figures, days),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics not read from the database");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// An error answer: a status and core's JSON body.
struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

/// The versions this server speaks, told with every `unsupported_version` answer so a
/// device can step down (or up) to one both sides speak.
const VERSIONS: (u8, u8) = (protocol::PROTOCOL_MIN_VERSION, protocol::PROTOCOL_VERSION);

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        if e.code() == ErrorCode::Internal {
            tracing::error!(error = %e, "request failed");
        }
        ApiError::new(
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.code(),
            e.public_message(),
        )
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::UnsupportedVersion(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::UnsupportedVersion,
                e.to_string(),
            ),
            DecodeError::TooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooLarge,
                e.to_string(),
            ),
            DecodeError::NotAMessage | DecodeError::Damaged(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedRequest,
                e.to_string(),
            ),
        }
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::TooLarge,
        "the request body is larger than this server accepts",
    )
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else if serve::is_body_timeout(&rejection) {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::MalformedRequest,
                "the request body did not arrive in time",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedRequest,
                "the request body could not be read",
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let versions = (self.code == ErrorCode::UnsupportedVersion).then_some(VERSIONS);
        let body = ErrorBody {
            error: self.code,
            message: self.message,
            versions,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        response
    }
}

/// A protocol answer, in the version the request was written in.
fn protocol_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// Runs work on the blocking pool: SQLite and Automerge are synchronous, and inflating and
/// decoding a body of megabytes is CPU work that would stall the other connections.
async fn blocking<T: Send + 'static, E: From<HubError> + Send + 'static>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| E::from(HubError::Internal(format!("request worker failed: {e}"))))?
}

async fn enrol(State(state): State<Arc<AppState>>, request: Request) -> Response {
    // Behind a reverse proxy every client shares the proxy's address: the limit then
    // applies to all of them together, which errs on the safe side.
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let hub = state.hub.clone();
    let bucket = state.enrol_bucket;
    let admitted = blocking(move || hub.admit_enrolment(ip, bucket)).await;
    let admitted = match admitted {
        Ok(admitted) => admitted,
        Err(e) => {
            state.metrics.enrolment(Some(e.code()));
            return ApiError::from(e).into_response();
        }
    };
    if !admitted {
        tracing::warn!("enrolment attempts rate-limited");
        state.metrics.enrolment(Some(ErrorCode::RateLimited));
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "too many enrolment attempts: wait a minute",
        )
        .into_response();
    }
    let metrics = state.metrics.clone();
    match enrol_inner(state, request).await {
        Ok(response) => {
            metrics.enrolment(None);
            response
        }
        Err(e) => {
            if e.code == ErrorCode::InvalidEnrolmentCode {
                tracing::info!("enrolment refused: invalid code");
            }
            metrics.enrolment(Some(e.code));
            e.into_response()
        }
    }
}

/// Anyone on the network may call this: it reads at most `ENROL_MAX_BODY_BYTES`, inflates
/// at most `ENROL_MAX_MESSAGE_BYTES`, refuses a code that cannot be one before any
/// database work, and cuts the label to its longest before handing it on.
async fn enrol_inner(state: Arc<AppState>, request: Request) -> Result<Response, ApiError> {
    let stated = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if stated.is_some_and(|n| n > ENROL_MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = Bytes::from_request(request, &()).await?;
    let version = protocol::version_of(&body)?;
    let enrol = protocol::decode_enrol(&body, ENROL_MAX_MESSAGE_BYTES)?;
    let code = secret::normalize_code(&enrol.code).ok_or(HubError::InvalidEnrolmentCode)?;
    let device_label = enrol.device_label.chars().take(LABEL_MAX_CHARS).collect();
    let hub = state.hub.clone();
    let request = EnrolRequest {
        code,
        device_label,
        writer: enrol.writer,
        previous_token: enrol.previous_token,
    };
    let answer = blocking(move || hub.enrol(request)).await?;
    Ok(protocol_response(protocol::encode_as(version, &answer)))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn sync(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let metrics = state.metrics.clone();
    match sync_inner(state, request).await {
        Ok((response, stats, rejected)) => {
            metrics.sync_answered(stats.pushed, stats.pulled, &rejected);
            response
        }
        Err(e) => {
            metrics.sync_refused(e.code);
            e.into_response()
        }
    }
}

/// The answer, its counts, and the code of each record it rejected.
async fn sync_inner(
    state: Arc<AppState>,
    request: Request,
) -> Result<(Response, SyncStats, Vec<RejectCode>), ApiError> {
    let started = Instant::now();
    // Authenticate before reading the body: unknown clients cost no buffering.
    let token = bearer(request.headers())
        .ok_or(HubError::Unauthorized)?
        .to_string();
    let hub = state.hub.clone();
    let device = blocking(move || hub.authenticate(&token)).await?;
    let body = Bytes::from_request(request, &()).await?;
    let bytes_in = body.len();
    let hub = state.hub.clone();
    let device_id = device.id;
    let (encoded, (cursor, more), stats, rejected) = blocking(move || {
        let version = protocol::version_of(&body)?;
        let sync: SyncRequest = protocol::decode_request(&body)?;
        let (answer, stats) = hub.sync_with_stats(&device, sync, version)?;
        let encoded = protocol::encode_response(version, &answer);
        let rejected = answer.rejections.iter().map(|r| r.code).collect();
        Ok::<_, ApiError>((encoded, (answer.cursor, answer.more), stats, rejected))
    })
    .await?;
    let response = protocol_response(encoded);
    tracing::info!(
        device = %device_id,
        pushed = stats.pushed,
        stored = stats.stored,
        acked = stats.acked,
        rejected = stats.rejected,
        pulled = stats.pulled,
        erased = stats.erased,
        cursor,
        more,
        bytes_in,
        ms = started.elapsed().as_millis() as u64,
        "sync"
    );
    Ok((response, stats, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }
}
