//! A run's results: a markdown table for people, JSON for scripts.

use serde_json::json;

use super::Config;
use super::stats::{Kind, Latency, ProcessSamples, Recorder};

/// What the convergence check found after settling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Convergence {
    pub tablets: usize,
    /// Tablets holding exactly their team's records, each at their teammates' heads.
    pub converged: usize,
    pub not_enrolled: usize,
    /// Records made in all (seed and run), over every team.
    pub records: usize,
    /// Summed over tablets: team records missing, records of no team's, and records at
    /// other heads than the team's first tablet holds.
    pub missing: usize,
    pub unexpected: usize,
    pub diverged: usize,
}

impl Convergence {
    pub fn ok(&self) -> bool {
        self.converged == self.tablets && self.tablets > 0
    }
}

/// Sizes of one database over the run: a file (with its WAL) or a server's `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct DbSize {
    pub source: String,
    /// (seconds from the start, bytes).
    pub samples: Vec<(f64, u64)>,
}

impl DbSize {
    pub fn new(source: String) -> DbSize {
        DbSize {
            source,
            samples: Vec::new(),
        }
    }

    fn first(&self) -> Option<u64> {
        self.samples.first().map(|s| s.1)
    }

    fn last(&self) -> Option<u64> {
        self.samples.last().map(|s| s.1)
    }
}

pub struct Report {
    pub config: Config,
    pub setup_secs: f64,
    pub seed_secs: f64,
    /// From the first enrolment to the end of the last tablet's last sync of the run.
    pub run_secs: f64,
    pub settle_rounds: u32,
    pub recorder: Recorder,
    pub processes: Vec<ProcessSamples>,
    pub db: Vec<DbSize>,
    pub tool_rss_peak: u64,
    /// The load tool's own CPU over the run and settling.
    pub tool_cpu_secs: Option<f64>,
    pub convergence: Convergence,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Report {
    pub fn latency(&self, kind: Kind) -> Latency {
        Latency::of(self.recorder.samples.iter().filter(|s| s.kind == kind))
    }

    /// Rates count syncs that ended within the run's configured duration.
    fn per_second(&self, n: u64) -> f64 {
        n as f64 / self.config.duration.as_secs_f64()
    }

    pub fn markdown(&self) -> String {
        let c = &self.config;
        let r = &self.recorder;
        let mut out = String::new();
        out.push_str(&format!(
            "## Load: {} tablets, {} teams, {} server(s), {:.0} s, a sync every {:.0} s\n\n",
            c.tablets,
            c.teams,
            c.servers.len(),
            c.duration.as_secs_f64(),
            c.sync_every.as_secs_f64()
        ));
        out.push_str(&format!(
            "Setup {:.1} s; seeding {} records per team {:.1} s; run {:.1} s; settling {} round(s).\n\n",
            self.setup_secs, c.seed_records, self.seed_secs, self.run_secs, self.settle_rounds
        ));
        out.push_str("| kind | syncs | failed | requests | p50 ms | p95 ms | p99 ms | max ms |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for kind in Kind::ALL {
            let l = self.latency(kind);
            if l.count == 0 {
                continue;
            }
            out.push_str(&format!(
                "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                kind.name(),
                l.count,
                l.failed,
                r.requests.get(&kind).copied().unwrap_or(0),
                l.p50,
                l.p95,
                l.p99,
                l.max
            ));
        }
        let t = r.in_run;
        out.push_str("\n| figure | value |\n|---|---:|\n");
        let mut row = |name: &str, value: String| {
            out.push_str(&format!("| {name} | {value} |\n"));
        };
        row(
            "syncs/s (during the run)",
            format!("{:.2}", self.per_second(t.syncs)),
        );
        row("requests/s", format!("{:.2}", self.per_second(t.requests)));
        row(
            "records pushed/s",
            format!("{:.1}", self.per_second(t.pushed)),
        );
        row(
            "records pulled/s",
            format!("{:.1}", self.per_second(t.pulled)),
        );
        row(
            "bytes up / down (bodies, run)",
            format!("{:.2} MiB / {:.2} MiB", mib(t.bytes_up), mib(t.bytes_down)),
        );
        row(
            "bytes up / down (bodies, all)",
            format!("{:.2} MiB / {:.2} MiB", mib(r.bytes_up), mib(r.bytes_down)),
        );
        row(
            "records pushed / acknowledged / pulled (all)",
            format!("{} / {} / {}", r.pushed, r.acked, r.pulled),
        );
        row("errors", r.error_count().to_string());
        for p in &self.processes {
            let cpu = match (p.cpu_start, p.cpu_end) {
                (Some(a), Some(b)) => format!("; CPU {:.1} s", b - a),
                _ => String::new(),
            };
            row(
                &format!("server {} memory (RSS)", p.pid),
                format!(
                    "peak {:.1} MiB, last {:.1} MiB{cpu}",
                    mib(p.peak()),
                    mib(p.rss.last().map_or(0, |s| s.1))
                ),
            );
        }
        for d in &self.db {
            match (d.first(), d.last()) {
                (Some(a), Some(b)) => row(
                    &format!("database size ({})", d.source),
                    format!("{:.2} MiB → {:.2} MiB", mib(a), mib(b)),
                ),
                _ => row(&format!("database size ({})", d.source), "not read".into()),
            }
        }
        row(
            "load tool (RSS peak; CPU)",
            format!(
                "{:.1} MiB; {}",
                mib(self.tool_rss_peak),
                self.tool_cpu_secs
                    .map_or("not read".into(), |s| format!("{s:.1} s"))
            ),
        );
        let v = &self.convergence;
        row(
            "convergence",
            format!(
                "{}/{} tablets hold their team's {} records at the same heads (missing {}, unexpected {}, diverged {}, not enrolled {})",
                v.converged,
                v.tablets,
                v.records,
                v.missing,
                v.unexpected,
                v.diverged,
                v.not_enrolled
            ),
        );
        if !r.errors.is_empty() {
            out.push_str("\n| error | count |\n|---|---:|\n");
            for (e, n) in &r.errors {
                out.push_str(&format!("| {e} | {n} |\n"));
            }
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let c = &self.config;
        let r = &self.recorder;
        let kinds: serde_json::Map<String, serde_json::Value> = Kind::ALL
            .iter()
            .map(|&k| {
                let l = self.latency(k);
                (
                    k.name().to_string(),
                    json!({
                        "syncs": l.count, "failed": l.failed,
                        "requests": r.requests.get(&k).copied().unwrap_or(0),
                        "p50_ms": l.p50, "p95_ms": l.p95, "p99_ms": l.p99, "max_ms": l.max,
                    }),
                )
            })
            .collect();
        let t = r.in_run;
        json!({
            "config": {
                "servers": c.servers, "teams": c.teams, "tablets": c.tablets,
                "seed_records": c.seed_records, "duration_s": c.duration.as_secs_f64(),
                "sync_every_s": c.sync_every.as_secs_f64(), "ramp_up_s": c.ramp_up.as_secs_f64(),
                "visits_per_sync": c.visits_per_sync, "new_youth": c.new_youth,
                "edits_per_sync": c.edits_per_sync, "offline_fraction": c.offline_fraction,
                "offline_for_s": c.offline_for.as_secs_f64(), "shared_client": c.shared_client,
                "seed": c.seed,
            },
            "setup_s": self.setup_secs, "seed_s": self.seed_secs, "run_s": self.run_secs,
            "settle_rounds": self.settle_rounds,
            "kinds": kinds,
            "run": {
                "syncs_per_s": self.per_second(t.syncs),
                "requests_per_s": self.per_second(t.requests),
                "records_pushed_per_s": self.per_second(t.pushed),
                "records_pulled_per_s": self.per_second(t.pulled),
                "bytes_up": t.bytes_up, "bytes_down": t.bytes_down,
            },
            "totals": {
                "pushed": r.pushed, "acked": r.acked, "pulled": r.pulled,
                "bytes_up": r.bytes_up, "bytes_down": r.bytes_down,
            },
            "errors": r.errors,
            "error_count": r.error_count(),
            "servers": self.processes.iter().map(|p| json!({
                "pid": p.pid, "rss_peak_bytes": p.peak(),
                "rss_last_bytes": p.rss.last().map(|s| s.1),
                "cpu_s": p.cpu_start.zip(p.cpu_end).map(|(a, b)| b - a),
                "rss": p.rss,
            })).collect::<Vec<_>>(),
            "databases": self.db.iter().map(|d| json!({
                "source": d.source, "first_bytes": d.first(), "last_bytes": d.last(),
                "samples": d.samples,
            })).collect::<Vec<_>>(),
            "tool_rss_peak_bytes": self.tool_rss_peak,
            "tool_cpu_s": self.tool_cpu_secs,
            "convergence": {
                "ok": self.convergence.ok(),
                "tablets": self.convergence.tablets, "converged": self.convergence.converged,
                "not_enrolled": self.convergence.not_enrolled, "records": self.convergence.records,
                "missing": self.convergence.missing, "unexpected": self.convergence.unexpected,
                "diverged": self.convergence.diverged,
            },
            "samples": r.samples.iter().map(|s| json!([
                k_short(s.kind), s.at.as_secs_f64(), s.latency.as_secs_f64() * 1e3, s.failed
            ])).collect::<Vec<_>>(),
        })
    }
}

fn k_short(kind: Kind) -> &'static str {
    match kind {
        Kind::Enrol => "enrol",
        Kind::Initial => "initial",
        Kind::Incremental => "incremental",
        Kind::CatchUp => "catch_up",
        Kind::Empty => "empty",
        Kind::Final => "final",
    }
}
