//! What the run measured: one sample per sync (or enrolment), counters, and the server
//! samples; summarised per kind of sync.

use std::collections::BTreeMap;
use std::time::Duration;

use super::tablet::SyncOutcome;

/// The kinds of sync the report tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Enrol,
    /// A tablet's first sync: its team's caseload.
    Initial,
    /// Pushed or pulled something.
    Incremental,
    /// The first sync after a stretch offline.
    CatchUp,
    /// Nothing to push, nothing to pull.
    Empty,
    /// The syncs after the run, before the convergence check.
    Final,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Enrol,
        Kind::Initial,
        Kind::Incremental,
        Kind::CatchUp,
        Kind::Empty,
        Kind::Final,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Enrol => "enrolment",
            Kind::Initial => "initial pull",
            Kind::Incremental => "incremental",
            Kind::CatchUp => "catch-up after offline",
            Kind::Empty => "empty",
            Kind::Final => "final (settling)",
        }
    }

    /// Incremental or empty, by what the sync carried.
    pub fn of_routine(out: &SyncOutcome) -> Kind {
        if out.pushed == 0 && out.pulled == 0 {
            Kind::Empty
        } else {
            Kind::Incremental
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub kind: Kind,
    /// When it ended, from the start of the run.
    pub at: Duration,
    pub latency: Duration,
    pub failed: bool,
}

/// Everything the tablets report, behind one lock (each sync takes it once).
#[derive(Debug, Default)]
pub struct Recorder {
    pub samples: Vec<Sample>,
    pub errors: BTreeMap<String, u64>,
    pub requests: BTreeMap<Kind, u64>,
    pub pushed: u64,
    pub acked: u64,
    pub pulled: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// The same, counted only for syncs that ended inside the run (for the rates).
    pub in_run: Totals,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub syncs: u64,
    pub requests: u64,
    pub pushed: u64,
    pub pulled: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

impl Recorder {
    pub fn record(
        &mut self,
        kind: Kind,
        at: Duration,
        latency: Duration,
        out: &SyncOutcome,
        in_run: bool,
    ) {
        self.samples.push(Sample {
            kind,
            at,
            latency,
            failed: out.failed,
        });
        for e in &out.errors {
            *self
                .errors
                .entry(format!("{}: {e}", kind.name()))
                .or_default() += 1;
        }
        *self.requests.entry(kind).or_default() += u64::from(out.requests);
        self.pushed += out.pushed as u64;
        self.acked += out.acked as u64;
        self.pulled += out.pulled as u64;
        self.bytes_up += out.bytes_up as u64;
        self.bytes_down += out.bytes_down as u64;
        if in_run && kind != Kind::Enrol {
            self.in_run.syncs += 1;
            self.in_run.requests += u64::from(out.requests);
            self.in_run.pushed += out.pushed as u64;
            self.in_run.pulled += out.pulled as u64;
            self.in_run.bytes_up += out.bytes_up as u64;
            self.in_run.bytes_down += out.bytes_down as u64;
        }
    }

    pub fn error(&mut self, label: String) {
        *self.errors.entry(label).or_default() += 1;
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Latency figures of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub failed: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    pub fn of<'a>(samples: impl Iterator<Item = &'a Sample>) -> Latency {
        let mut failed = 0;
        let mut ms: Vec<f64> = samples
            .inspect(|s| failed += usize::from(s.failed))
            .map(|s| s.latency.as_secs_f64() * 1e3)
            .collect();
        ms.sort_by(f64::total_cmp);
        Latency {
            count: ms.len(),
            failed,
            p50: percentile(&ms, 50.0),
            p95: percentile(&ms, 95.0),
            p99: percentile(&ms, 99.0),
            max: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One server process's samples.
#[derive(Debug, Clone, Default)]
pub struct ProcessSamples {
    pub pid: u32,
    /// (seconds from the start, resident set in bytes).
    pub rss: Vec<(f64, u64)>,
    /// CPU seconds (user + system) when the run started and when it ended.
    pub cpu_start: Option<f64>,
    pub cpu_end: Option<f64>,
}

impl ProcessSamples {
    pub fn peak(&self) -> u64 {
        self.rss.iter().map(|(_, b)| *b).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
