//! The server's own counters, served as Prometheus text (`GET /metrics`, exposition format
//! 0.0.4): syncs by outcome, records pushed, pulled and rejected, refusals by code,
//! enrolments, the `503`s of the serving limits, request latency per route group, the
//! database's size and the tablets that have not synced for a while.
//!
//! A small registry of atomics rather than the `prometheus-client` crate: the set of
//! series is fixed and small (every label value comes from a closed enum), so a few
//! arrays of counters cover it with no new dependency and no locking on the request path.
//!
//! No label carries a person, a team, an organisation, a device or an address: the labels
//! are outcomes, protocol codes and route groups only.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use repere_core::sync::protocol::{ErrorCode, RejectCode};

use crate::storage::Device;

/// How a sync or enrolment request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered (a sync may still have rejected some of its records: counted apart).
    Ok,
    /// Refused as a whole for what the client sent or is (4xx).
    Rejected,
    /// The server failed (5xx).
    Error,
}

const OUTCOMES: [Outcome; 3] = [Outcome::Ok, Outcome::Rejected, Outcome::Error];

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
        }
    }

    /// The outcome of a refusal with this code.
    pub fn of_code(code: ErrorCode) -> Outcome {
        if code == ErrorCode::Internal {
            Outcome::Error
        } else {
            Outcome::Rejected
        }
    }
}

const ERROR_CODES: [ErrorCode; 9] = [
    ErrorCode::MalformedRequest,
    ErrorCode::UnsupportedVersion,
    ErrorCode::TooLarge,
    ErrorCode::Unauthorized,
    ErrorCode::DeviceRevoked,
    ErrorCode::WipeOrdered,
    ErrorCode::InvalidEnrolmentCode,
    ErrorCode::RateLimited,
    ErrorCode::Internal,
];

fn error_label(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::MalformedRequest => "malformed_request",
        ErrorCode::UnsupportedVersion => "unsupported_version",
        ErrorCode::TooLarge => "too_large",
        ErrorCode::Unauthorized => "unauthorized",
        ErrorCode::DeviceRevoked => "device_revoked",
        ErrorCode::WipeOrdered => "wipe_ordered",
        ErrorCode::InvalidEnrolmentCode => "invalid_enrolment_code",
        ErrorCode::RateLimited => "rate_limited",
        ErrorCode::Internal => "internal",
    }
}

const REJECT_CODES: [RejectCode; 7] = [
    RejectCode::Invalid,
    RejectCode::OutOfScope,
    RejectCode::Erased,
    RejectCode::Malformed,
    RejectCode::MissingHistory,
    RejectCode::Rewritten,
    RejectCode::Transferred,
];

fn reject_label(code: RejectCode) -> &'static str {
    match code {
        RejectCode::Invalid => "invalid",
        RejectCode::OutOfScope => "out_of_scope",
        RejectCode::Erased => "erased",
        RejectCode::Malformed => "malformed",
        RejectCode::MissingHistory => "missing_history",
        RejectCode::Rewritten => "rewritten",
        RejectCode::Transferred => "transferred",
    }
}

/// The route groups whose latency is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteGroup {
    Sync,
    Enrol,
    /// The coordinators' pages and exports.
    Pages,
}

const GROUPS: [RouteGroup; 3] = [RouteGroup::Sync, RouteGroup::Enrol, RouteGroup::Pages];

impl RouteGroup {
    fn label(self) -> &'static str {
        match self {
            RouteGroup::Sync => "sync",
            RouteGroup::Enrol => "enrol",
            RouteGroup::Pages => "pages",
        }
    }
}

/// Which serving limit (`serve.rs`) a client ran into and got `503` for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overload {
    /// A new connection past `--max-connections`.
    Connections,
    /// A new connection past `--max-connections-per-address` from its address.
    ConnectionsPerAddress,
    /// A request that waited past `--queue-timeout-secs` for one of `--max-requests`.
    RequestQueue,
}

const OVERLOADS: [Overload; 3] = [
    Overload::Connections,
    Overload::ConnectionsPerAddress,
    Overload::RequestQueue,
];

impl Overload {
    fn label(self) -> &'static str {
        match self {
            Overload::Connections => "connections",
            Overload::ConnectionsPerAddress => "connections_per_address",
            Overload::RequestQueue => "request_queue",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds: from a page served from cache to an
/// initial pull of thousands of records over the body timeout's range.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    /// Observations at or below each bound (not cumulative; summed when written).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// What a scrape reads from the database at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseFigures {
    pub size_bytes: u64,
    /// Tablets not revoked whose last sync (or enrolment, if they never synced) is older
    /// than the silence threshold.
    pub silent_tablets: u64,
}

/// The counters, shared by every request.
#[derive(Default)]
pub struct Metrics {
    syncs: [AtomicU64; OUTCOMES.len()],
    enrolments: [AtomicU64; OUTCOMES.len()],
    refusals: [AtomicU64; ERROR_CODES.len()],
    records_pushed: AtomicU64,
    records_pulled: AtomicU64,
    records_rejected: [AtomicU64; REJECT_CODES.len()],
    overloads: [AtomicU64; OVERLOADS.len()],
    latency: [Histogram; GROUPS.len()],
}

fn index<T: PartialEq>(all: &[T], item: &T) -> usize {
    all.iter().position(|x| x == item).unwrap_or(0)
}

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

impl Metrics {
    /// A sync answered: what it pushed and pulled, and each record it rejected.
    pub fn sync_answered(&self, pushed: usize, pulled: usize, rejected: &[RejectCode]) {
        add(&self.syncs[index(&OUTCOMES, &Outcome::Ok)], 1);
        add(&self.records_pushed, pushed);
        add(&self.records_pulled, pulled);
        for code in rejected {
            add(&self.records_rejected[index(&REJECT_CODES, code)], 1);
        }
    }

    /// A sync refused as a whole.
    pub fn sync_refused(&self, code: ErrorCode) {
        add(&self.syncs[index(&OUTCOMES, &Outcome::of_code(code))], 1);
        add(&self.refusals[index(&ERROR_CODES, &code)], 1);
    }

    /// An enrolment answered (`None`) or refused with a code.
    pub fn enrolment(&self, refused: Option<ErrorCode>) {
        let outcome = refused.map_or(Outcome::Ok, Outcome::of_code);
        add(&self.enrolments[index(&OUTCOMES, &outcome)], 1);
        if let Some(code) = refused {
            add(&self.refusals[index(&ERROR_CODES, &code)], 1);
        }
    }

    /// A `503` for a serving limit (the connection is counted even when it is closed
    /// without an answer, too many refusals being written already).
    pub fn overloaded(&self, limit: Overload) {
        add(&self.overloads[index(&OVERLOADS, &limit)], 1);
    }

    pub fn observe(&self, group: RouteGroup, took: Duration) {
        self.latency[index(&GROUPS, &group)].observe(took);
    }

    /// The exposition text: the counters, then `database` as read for this scrape.
    pub fn render(&self, database: DatabaseFigures, silent_days: u32) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        head(
            &mut out,
            "repere_sync_requests_total",
            "counter",
            "Sync requests by outcome (ok: answered; rejected: refused for what the client sent or is; error: server failure).",
        );
        for (o, c) in OUTCOMES.iter().zip(&self.syncs) {
            let _ = writeln!(
                out,
                "repere_sync_requests_total{{outcome=\"{}\"}} {}",
                o.label(),
                load(c)
            );
        }
        head(
            &mut out,
            "repere_enrolments_total",
            "counter",
            "Enrolment requests by outcome.",
        );
        for (o, c) in OUTCOMES.iter().zip(&self.enrolments) {
            let _ = writeln!(
                out,
                "repere_enrolments_total{{outcome=\"{}\"}} {}",
                o.label(),
                load(c)
            );
        }
        head(
            &mut out,
            "repere_refusals_total",
            "counter",
            "Sync and enrolment requests refused as a whole, by protocol error code.",
        );
        for (code, c) in ERROR_CODES.iter().zip(&self.refusals) {
            let _ = writeln!(
                out,
                "repere_refusals_total{{code=\"{}\"}} {}",
                error_label(*code),
                load(c)
            );
        }
        head(
            &mut out,
            "repere_records_pushed_total",
            "counter",
            "Records pushed by tablets in answered syncs.",
        );
        let _ = writeln!(
            out,
            "repere_records_pushed_total {}",
            load(&self.records_pushed)
        );
        head(
            &mut out,
            "repere_records_pulled_total",
            "counter",
            "Records sent to tablets in answered syncs.",
        );
        let _ = writeln!(
            out,
            "repere_records_pulled_total {}",
            load(&self.records_pulled)
        );
        head(
            &mut out,
            "repere_records_rejected_total",
            "counter",
            "Pushed records rejected one by one, by rejection code (the rest of their sync went through).",
        );
        for (code, c) in REJECT_CODES.iter().zip(&self.records_rejected) {
            let _ = writeln!(
                out,
                "repere_records_rejected_total{{code=\"{}\"}} {}",
                reject_label(*code),
                load(c)
            );
        }
        head(
            &mut out,
            "repere_overload_refusals_total",
            "counter",
            "Connections and requests refused with 503 by a serving limit (connections: --max-connections; connections_per_address: --max-connections-per-address; request_queue: --queue-timeout-secs waiting for one of --max-requests).",
        );
        for (limit, c) in OVERLOADS.iter().zip(&self.overloads) {
            let _ = writeln!(
                out,
                "repere_overload_refusals_total{{limit=\"{}\"}} {}",
                limit.label(),
                load(c)
            );
        }
        head(
            &mut out,
            "repere_http_request_duration_seconds",
            "histogram",
            "Time to answer a request, by route group (sync, enrol, pages).",
        );
        for (g, h) in GROUPS.iter().zip(&self.latency) {
            let group = g.label();
            let mut cumulative = 0;
            for (bound, b) in BUCKETS.iter().zip(&h.buckets) {
                cumulative += load(b);
                let _ = writeln!(
                    out,
                    "repere_http_request_duration_seconds_bucket{{group=\"{group}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = load(&h.count);
            let _ = writeln!(
                out,
                "repere_http_request_duration_seconds_bucket{{group=\"{group}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "repere_http_request_duration_seconds_sum{{group=\"{group}\"}} {}",
                load(&h.sum_micros) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "repere_http_request_duration_seconds_count{{group=\"{group}\"}} {count}"
            );
        }
        head(
            &mut out,
            "repere_database_size_bytes",
            "gauge",
            "Size of the database on disk, in bytes (its file and its write-ahead log).",
        );
        let _ = writeln!(out, "repere_database_size_bytes {}", database.size_bytes);
        head(
            &mut out,
            "repere_tablets_silent",
            "gauge",
            "Tablets not revoked that have not synced for more than the given number of days (since enrolment if never).",
        );
        let _ = writeln!(
            out,
            "repere_tablets_silent{{days=\"{silent_days}\"}} {}",
            database.silent_tablets
        );
        out
    }
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Tablets not revoked and silent for more than `days` at `now`.
pub fn silent_tablets(devices: &[Device], now: DateTime<Utc>, days: u32) -> u64 {
    let since = now - chrono::Duration::days(i64::from(days));
    devices
        .iter()
        .filter(|d| d.revoked_at.is_none())
        .filter(|d| d.last_sync_at.unwrap_or(d.enrolled_at) < since)
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_refusals_are_counted_by_limit_with_every_label_shown() {
        let m = Metrics::default();
        let figures = DatabaseFigures {
            size_bytes: 0,
            silent_tablets: 0,
        };
        let text = m.render(figures, 7);
        for limit in ["connections", "connections_per_address", "request_queue"] {
            assert!(
                text.contains(&format!(
                    "repere_overload_refusals_total{{limit=\"{limit}\"}} 0\n"
                )),
                "{text}"
            );
        }
        m.overloaded(Overload::ConnectionsPerAddress);
        m.overloaded(Overload::ConnectionsPerAddress);
        m.overloaded(Overload::RequestQueue);
        let text = m.render(figures, 7);
        assert!(text.contains("repere_overload_refusals_total{limit=\"connections\"} 0\n"));
        assert!(
            text.contains("repere_overload_refusals_total{limit=\"connections_per_address\"} 2\n")
        );
        assert!(text.contains("repere_overload_refusals_total{limit=\"request_queue\"} 1\n"));
        assert!(text.contains("# TYPE repere_overload_refusals_total counter"));
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_the_count() {
        let m = Metrics::default();
        m.observe(RouteGroup::Pages, Duration::from_millis(3));
        m.observe(RouteGroup::Pages, Duration::from_millis(70));
        m.observe(RouteGroup::Pages, Duration::from_secs(60));
        let text = m.render(
            DatabaseFigures {
                size_bytes: 4096,
                silent_tablets: 0,
            },
            7,
        );
        let bucket = |le: &str| {
            let prefix = format!(
                "repere_http_request_duration_seconds_bucket{{group=\"pages\",le=\"{le}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("bucket {le}"))
                .to_string()
        };
        assert_eq!(bucket("0.005"), "1");
        assert_eq!(bucket("0.05"), "1");
        assert_eq!(bucket("0.1"), "2");
        assert_eq!(bucket("30"), "2");
        assert_eq!(bucket("+Inf"), "3");
        assert!(text.contains("repere_http_request_duration_seconds_count{group=\"pages\"} 3"));
        assert!(text.contains("repere_database_size_bytes 4096"));
    }
}
