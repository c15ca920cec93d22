//! The load tool: N simulated tablets against one or more running servers, through the
//! real protocol (enrolment, initial pull, days of visits, notes and syncs, tablets
//! offline then catching up), with a table of figures, a JSON file and an SVG chart.
//! Tablets are simulated at the protocol level, not as stores: see `repere_tests::load`.
//!
//!   repere-load --servers http://127.0.0.1:8080 \
//!     --admin-cmd "target/release/repere-server admin --data-dir /tmp/repere" \
//!     --tablets 200 --teams 20 --duration 60s --sync-every 30s \
//!     --server-pid 1234 --db-file /tmp/repere/repere.db \
//!     --json target/load/run.json --chart target/load/run.svg
//!
//! The server needs `--enrol-per-minute` raised (every tablet enrols from this address)
//! and, past 64 tablets, `--max-connections-per-address` (one connection per tablet).
//! scripts/load-test.sh starts one and runs this.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use repere_tests::load::{self, Admin, Config};

#[derive(Parser)]
#[command(
    name = "repere-load",
    about = "Plays N tablets against Repère sync servers"
)]
struct Args {
    /// Server addresses, comma-separated; tablets are spread over them round-robin
    #[arg(long, value_delimiter = ',', required = true)]
    servers: Vec<String>,
    /// The server's admin command line, up to the command, e.g. "repere-server admin
    /// --data-dir DIR" (split on spaces; the key comes from REPERE_KEY_FILE)
    #[arg(long)]
    admin_cmd: String,
    #[arg(long, default_value_t = 100)]
    tablets: usize,
    #[arg(long, default_value_t = 10)]
    teams: usize,
    /// Records each team holds before its tablets enrol (their initial pull)
    #[arg(long, default_value_t = 200)]
    seed_records: usize,
    /// How long the tablets live (e.g. 60s, 10m, 2h)
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Each tablet's interval between syncs, jittered ±50 %
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    sync_every: Duration,
    /// Tablets enrol and pull spread over this long
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    ramp_up: Duration,
    /// Visits recorded between two syncs, on average
    #[arg(long, default_value_t = 1.0)]
    visits_per_sync: f64,
    /// Chance that a visit is with a young person met for the first time
    #[arg(long, default_value_t = 0.3)]
    new_youth: f64,
    /// Notes added to the team's visits between two syncs, on average
    #[arg(long, default_value_t = 0.5)]
    edits_per_sync: f64,
    /// Fraction of tablets that go offline once, keep working, then catch up
    #[arg(long, default_value_t = 0.1)]
    offline_fraction: f64,
    /// How long they stay offline (default: a third of the duration)
    #[arg(long, value_parser = parse_duration)]
    offline_for: Option<Duration>,
    /// Server process ids whose memory (RSS) and CPU are sampled, comma-separated
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// SQLite database files whose size (with the WAL) is sampled
    #[arg(long)]
    db_file: Vec<PathBuf>,
    /// Do not read the database size from the servers' /metrics
    #[arg(long)]
    no_metrics: bool,
    /// The servers' --metrics-token (or REPERE_METRICS_TOKEN)
    #[arg(long, env = "REPERE_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// One HTTP connection pool for all tablets instead of one client each
    #[arg(long)]
    shared_client: bool,
    /// Syncs at once while settling after the run
    #[arg(long, default_value_t = 16)]
    settle_concurrency: usize,
    /// Worker threads for the tablets
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the results as JSON here
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the latency chart (SVG) here
    #[arg(long)]
    chart: Option<PathBuf>,
    /// The chart's time bucket (default: about 150 buckets over the run)
    #[arg(long, value_parser = parse_duration)]
    bucket: Option<Duration>,
}

/// `500ms`, `30s`, `5m`, `2h`, or seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = number.parse().map_err(|_| format!("not a duration: {s}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in {s} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(admin) = Admin::parse(&args.admin_cmd) else {
        eprintln!("--admin-cmd is empty");
        return ExitCode::FAILURE;
    };
    let mut config = Config::new(args.servers, admin);
    config.tablets = args.tablets;
    config.teams = args.teams;
    config.seed_records = args.seed_records;
    config.duration = args.duration;
    config.sync_every = args.sync_every;
    config.ramp_up = args.ramp_up;
    config.visits_per_sync = args.visits_per_sync;
    config.new_youth = args.new_youth;
    config.edits_per_sync = args.edits_per_sync;
    config.offline_fraction = args.offline_fraction;
    config.offline_for = args.offline_for.unwrap_or(args.duration / 3);
    config.server_pids = args.server_pid;
    config.db_files = args.db_file;
    config.read_metrics = !args.no_metrics;
    config.metrics_token = args.metrics_token;
    config.shared_client = args.shared_client;
    config.settle_concurrency = args.settle_concurrency;
    config.threads = args.threads;
    config.seed = args.seed;
    let report = match load::run(&config) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("load run failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", report.markdown());
    let written = |path: &PathBuf, what: &str, bytes: &[u8]| {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::write(path, bytes) {
            Ok(()) => println!("{what}: {}", path.display()),
            Err(e) => eprintln!("{what} not written to {}: {e}", path.display()),
        }
    };
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.json()).unwrap_or_default();
        written(path, "JSON", text.as_bytes());
    }
    if let Some(path) = &args.chart {
        let bucket = args.bucket.map_or(0.0, |b| b.as_secs_f64());
        written(path, "chart", load::chart::svg(&report, bucket).as_bytes());
    }
    if report.recorder.error_count() == 0 && report.convergence.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        assert!(parse_duration("3 days").is_err());
    }
}
