//! The load tool's engine (`repere-load`, and the smoke test): N tablets played against
//! one or more servers through the real protocol, with the figures a capacity plan needs.
//!
//! Tablets are simulated at the protocol level ([`tablet`]), not as `repere_core::Store`s,
//! after a measurement (release build, 2026-12-04): 100 real stores enrolling and pulling
//! 200 records cost 670 KiB of memory and 28 ms of CPU each, and an incremental sync
//! 12 ms of the tablet's CPU (each applies pulled documents in a transaction and reindexes
//! them), plus one HTTP worker thread per store; a thousand of them beside the server on
//! a 2-core machine would measure the stores. Protocol-level tablets cost 320 KiB each
//! (their records' bytes, one HTTP client) and 1.1–1.3 ms of CPU per sync, initial pulls
//! included. The server sees the same requests either way: the records are core's
//! Automerge documents made through core's record API under the tablet's writer id, the
//! messages core's encoding with the tablet's bearer token, the exchanges core's order
//! (see `tablet`).
//!
//! A run: setup through the server's admin command line (an organisation, `teams` teams
//! with two members each, one enrolment code per tablet), a first tablet per team pushes
//! `seed_records` records, then the tablets enrol over `ramp_up` and pull their team's
//! caseload, and live for `duration`: each syncs every `sync_every` (jittered ±50 %),
//! and between syncs records visits (sometimes with a new young person) and adds notes
//! to its team's visits. A fraction goes offline once for `offline_for`, keeps working,
//! and catches up. Then every tablet syncs until nothing moves, and each must hold
//! exactly its team's records, with the same heads as its teammates.

pub mod chart;
pub mod report;
pub mod stats;
pub mod tablet;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use uuid::Uuid;

pub use report::{Convergence, DbSize, Report};
use stats::{Kind, ProcessSamples, Recorder};
use tablet::{SyncOutcome, Tablet};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("admin command `{command}` failed: {stderr}")]
    Admin { command: String, stderr: String },
    #[error("admin command `{command}` printed no usable id")]
    AdminOutput { command: String },
    #[error("{0}")]
    Config(String),
    #[error("the HTTP client could not be set up: {0}")]
    Http(String),
    #[error("the load runtime could not start: {0}")]
    Runtime(#[from] std::io::Error),
}

/// How the server's admin commands are run: a program and its leading arguments, e.g.
/// `repere-server admin --data-dir /srv/repere` (later: `… admin --database postgres://…`),
/// then the command (`create-team …`). The server key comes from the environment
/// (`REPERE_KEY_FILE`), as for the server.
#[derive(Debug, Clone)]
pub struct Admin {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub envs: Vec<(String, OsString)>,
}

impl Admin {
    /// From a command line split on whitespace (paths with spaces need [`Admin`] itself).
    pub fn parse(line: &str) -> Option<Admin> {
        let mut words = line.split_whitespace();
        Some(Admin {
            program: PathBuf::from(words.next()?),
            args: words.map(OsString::from).collect(),
            envs: Vec::new(),
        })
    }

    fn run(&self, args: &[&str]) -> Result<String, LoadError> {
        let command = || format!("{} {}", self.program.display(), args.join(" "));
        let out = Command::new(&self.program)
            .args(&self.args)
            .args(args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .output()
            .map_err(|e| LoadError::Admin {
                command: command(),
                stderr: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(LoadError::Admin {
                command: command(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn id(&self, args: &[&str]) -> Result<Uuid, LoadError> {
        let out = self.run(args)?;
        Uuid::parse_str(out.lines().last().unwrap_or_default().trim()).map_err(|_| {
            LoadError::AdminOutput {
                command: args.first().copied().unwrap_or_default().to_string(),
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Base addresses; tablets are spread over them round-robin.
    pub servers: Vec<String>,
    pub admin: Admin,
    pub teams: usize,
    pub tablets: usize,
    /// Records each team holds before its tablets enrol (their initial pull).
    pub seed_records: usize,
    pub duration: Duration,
    pub sync_every: Duration,
    /// Tablets enrol and pull spread over this long.
    pub ramp_up: Duration,
    /// Visits recorded between two syncs, on average (Poisson).
    pub visits_per_sync: f64,
    /// The chance that a visit is with a young person met for the first time.
    pub new_youth: f64,
    /// Notes added to visits between two syncs, on average (Poisson).
    pub edits_per_sync: f64,
    pub offline_fraction: f64,
    pub offline_for: Duration,
    /// Server processes whose memory and CPU are sampled.
    pub server_pids: Vec<u32>,
    /// SQLite database files whose size (with their WAL) is sampled.
    pub db_files: Vec<PathBuf>,
    /// Read `repere_database_size_bytes` from each server's `/metrics`.
    pub read_metrics: bool,
    pub metrics_token: Option<String>,
    /// One HTTP client (one connection pool) for every tablet, instead of one each.
    pub shared_client: bool,
    /// Syncs run at once while settling (after the run).
    pub settle_concurrency: usize,
    /// Worker threads of the tablets' runtime.
    pub threads: usize,
    pub seed: u64,
}

impl Config {
    /// Defaults for everything but where the servers are and how to administer them.
    pub fn new(servers: Vec<String>, admin: Admin) -> Config {
        Config {
            servers,
            admin,
            teams: 10,
            tablets: 100,
            seed_records: 200,
            duration: Duration::from_secs(60),
            sync_every: Duration::from_secs(300),
            ramp_up: Duration::from_secs(10),
            visits_per_sync: 1.0,
            new_youth: 0.3,
            edits_per_sync: 0.5,
            offline_fraction: 0.1,
            offline_for: Duration::from_secs(20),
            server_pids: Vec::new(),
            db_files: Vec::new(),
            read_metrics: true,
            metrics_token: None,
            shared_client: false,
            settle_concurrency: 16,
            threads: 2,
            seed: 1,
        }
    }

    fn check(&self) -> Result<(), LoadError> {
        let bad = |m: &str| Err(LoadError::Config(m.into()));
        if self.servers.is_empty() {
            return bad("at least one server address is needed");
        }
        if self.teams == 0 || self.tablets == 0 {
            return bad("at least one team and one tablet are needed");
        }
        if self.sync_every.is_zero() || self.duration.is_zero() {
            return bad("the duration and the sync interval must be positive");
        }
        if !(0.0..=1.0).contains(&self.offline_fraction) || !(0.0..=1.0).contains(&self.new_youth) {
            return bad("fractions and chances are between 0 and 1");
        }
        if self.visits_per_sync < 0.0 || self.edits_per_sync < 0.0 || self.threads == 0 {
            return bad("rates cannot be negative, and the runtime needs a thread");
        }
        Ok(())
    }
}

/// A small deterministic generator (SplitMix64): schedules and picks, reproducible from
/// `--seed`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A Poisson draw of mean `mean` (Knuth's method: the means here are small).
    pub fn poisson(&mut self, mean: f64) -> u32 {
        let limit = (-mean.min(30.0)).exp();
        let mut k = 0;
        let mut p = self.unit();
        while p > limit {
            k += 1;
            p *= self.unit();
        }
        k
    }

    /// `every` jittered by ±50 %.
    fn jittered(&mut self, every: Duration) -> Duration {
        every.mul_f64(0.5 + self.unit())
    }
}

/// What setup made for one team.
struct TeamSetup {
    id: Uuid,
    seeder_code: String,
    codes: Vec<String>,
}

/// An organisation, the teams with two members each, and a code per tablet (and one for
/// each team's seeding tablet). Codes are issued from a few processes at once.
fn setup(admin: &Admin, teams: usize, tablets: usize) -> Result<Vec<TeamSetup>, LoadError> {
    let org = admin.id(&["create-org", "--name", "Organisation de charge"])?;
    let mut made = Vec::new();
    for t in 0..teams {
        let name = format!("Équipe de charge {t}");
        let id = admin.id(&["create-team", "--org", &org.to_string(), "--name", &name])?;
        for m in ["Membre A", "Membre B"] {
            admin.id(&["add-member", "--team", &id.to_string(), "--name", m])?;
        }
        // Tablet i is in team i % teams.
        let count = 1 + (tablets + teams - 1 - t) / teams;
        made.push((id, count));
    }
    let jobs: Vec<(usize, Uuid)> = made
        .iter()
        .enumerate()
        .flat_map(|(t, (id, count))| std::iter::repeat_n((t, *id), *count))
        .collect();
    let workers = 4.min(jobs.len()).max(1);
    let issued: Vec<Result<(usize, String), LoadError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(workers).max(1))
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(t, id)| {
                            admin
                                .run(&["issue-code", "--team", &id.to_string()])
                                .map(|code| (*t, code))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![Err(LoadError::Config(
                        "a code-issuing thread failed".into(),
                    ))]
                })
            })
            .collect()
    });
    let mut codes: Vec<Vec<String>> = vec![Vec::new(); teams];
    for r in issued {
        let (t, code) = r?;
        codes[t].push(code);
    }
    Ok(made
        .into_iter()
        .zip(codes)
        .map(|((id, _), mut codes)| {
            let seeder_code = codes.pop().unwrap_or_default();
            TeamSetup {
                id,
                seeder_code,
                codes,
            }
        })
        .collect())
}

fn http_client() -> Result<reqwest::Client, LoadError> {
    // As the tablets' transport sets it up (repere-transport).
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| LoadError::Http(e.to_string()))
}

/// What every tablet's task shares.
struct Shared {
    config: Config,
    t0: Instant,
    end: Instant,
    recorder: Mutex<Recorder>,
}

impl Shared {
    fn record(&self, kind: Kind, started: Instant, out: &SyncOutcome) {
        let now = Instant::now();
        let in_run = now <= self.end;
        self.recorder
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(kind, now - self.t0, now - started, out, in_run);
    }

    fn error(&self, label: String) {
        self.recorder
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .error(label);
    }
}

/// One tablet's life during the run.
struct Plan {
    start: Duration,
    /// From the start of the run.
    offline: Option<(Duration, Duration)>,
    seed: u64,
}

async fn live(mut tablet: Tablet, code: String, plan: Plan, shared: Arc<Shared>) -> Tablet {
    let config = &shared.config;
    tokio::time::sleep_until((shared.t0 + plan.start).into()).await;
    let started = Instant::now();
    let out = tablet.enrol(&code).await;
    shared.record(Kind::Enrol, started, &out);
    if !tablet.enrolled() {
        return tablet;
    }
    let started = Instant::now();
    let out = tablet.sync().await;
    shared.record(Kind::Initial, started, &out);
    let mut rng = Rng::new(plan.seed);
    let mut next = Instant::now() + config.sync_every.mul_f64(rng.unit());
    let mut missed = false;
    while next < shared.end {
        tokio::time::sleep_until(next.into()).await;
        let visits = rng.poisson(config.visits_per_sync);
        let edits = rng.poisson(config.edits_per_sync);
        if let Err(e) = tablet.work(visits, edits, config.new_youth) {
            shared.error(format!("a record could not be made on the tablet: {e}"));
        }
        let at = next - shared.t0;
        if plan.offline.is_some_and(|(from, to)| at >= from && at < to) {
            missed = true;
        } else {
            let started = Instant::now();
            let out = tablet.sync().await;
            let kind = if missed {
                Kind::CatchUp
            } else {
                Kind::of_routine(&out)
            };
            missed = false;
            shared.record(kind, started, &out);
        }
        // A timer that fell behind (syncs slower than the interval) fires at once, once:
        // missed ticks are not made up in a burst.
        next = (next + rng.jittered(config.sync_every)).max(Instant::now());
    }
    tablet
}

/// Samples the servers' memory and the databases' size every second until `stop`.
struct Sampler {
    processes: Vec<ProcessSamples>,
    db: Vec<DbSize>,
    tool_peak: u64,
    /// The load tool's own CPU seconds over the run.
    tool_cpu: Option<f64>,
}

async fn sample(config: Config, t0: Instant, stop: Arc<tokio::sync::Notify>) -> Sampler {
    let mut s = Sampler {
        processes: config
            .server_pids
            .iter()
            .map(|&pid| ProcessSamples {
                pid,
                cpu_start: proc_cpu_seconds(pid),
                ..ProcessSamples::default()
            })
            .collect(),
        db: config
            .db_files
            .iter()
            .map(|f| DbSize::new(f.display().to_string()))
            .chain(
                config
                    .servers
                    .iter()
                    .filter(|_| config.read_metrics)
                    .map(|u| DbSize::new(format!("{u}/metrics"))),
            )
            .collect(),
        tool_peak: 0,
        tool_cpu: None,
    };
    let tool_cpu_start = proc_cpu_seconds(std::process::id());
    let metrics = http_client().ok();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        let stopped = tokio::select! {
            _ = tick.tick() => false,
            () = stop.notified() => true,
        };
        let at = t0.elapsed().as_secs_f64();
        for p in &mut s.processes {
            if let Some(rss) = proc_rss(&format!("/proc/{}/status", p.pid)) {
                p.rss.push((at, rss));
            }
        }
        s.tool_peak = s.tool_peak.max(proc_rss("/proc/self/status").unwrap_or(0));
        for (i, f) in config.db_files.iter().enumerate() {
            let mut wal = f.clone().into_os_string();
            wal.push("-wal");
            let size = [f.clone(), PathBuf::from(wal)]
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum::<u64>();
            s.db[i].samples.push((at, size));
        }
        // The metrics page reads the database: every 5 s is enough.
        if let Some(client) = metrics.as_ref().filter(|_| n.is_multiple_of(5) || stopped) {
            let first = config.db_files.len();
            for (i, url) in config.servers.iter().enumerate() {
                if !config.read_metrics {
                    break;
                }
                if let Some(size) = metrics_db_size(client, url, &config.metrics_token).await {
                    s.db[first + i].samples.push((at, size));
                }
            }
        }
        n += 1;
        if stopped {
            for p in &mut s.processes {
                p.cpu_end = proc_cpu_seconds(p.pid);
            }
            s.tool_cpu = tool_cpu_start
                .zip(proc_cpu_seconds(std::process::id()))
                .map(|(a, b)| b - a);
            return s;
        }
    }
}

/// VmRSS of a `/proc/…/status` file, in bytes.
fn proc_rss(path: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// User and system CPU seconds of a process (`/proc/PID/stat` counts in USER_HZ, 100 on
/// Linux).
fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

async fn metrics_db_size(
    client: &reqwest::Client,
    server: &str,
    token: &Option<String>,
) -> Option<u64> {
    let mut req = client.get(format!("{}/metrics", server.trim_end_matches('/')));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let text = resp.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("repere_database_size_bytes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

/// Runs the whole load: setup, seeding, the run, settling and the convergence check.
pub fn run(config: &Config) -> Result<Report, LoadError> {
    config.check()?;
    let started = Instant::now();
    let teams = setup(&config.admin, config.teams, config.tablets)?;
    let setup_secs = started.elapsed().as_secs_f64();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .build()?;
    runtime.block_on(drive(config.clone(), teams, setup_secs))
}

async fn drive(
    config: Config,
    teams: Vec<TeamSetup>,
    setup_secs: f64,
) -> Result<Report, LoadError> {
    let shared_client = if config.shared_client {
        Some(http_client()?)
    } else {
        None
    };
    let client = || match &shared_client {
        Some(c) => Ok(c.clone()),
        None => http_client(),
    };
    let mut recorder = Recorder::default();

    // Each team's caseload, pushed by a first tablet.
    let seeding = Instant::now();
    let mut expected: Vec<BTreeSet<Uuid>> = Vec::new();
    let mut seeders = tokio::task::JoinSet::new();
    for (t, team) in teams.iter().enumerate() {
        let server = &config.servers[t % config.servers.len()];
        let mut seeder = Tablet::new(
            config.tablets + t,
            team.id,
            server,
            client()?,
            config.seed.wrapping_mul(1_000_003) + t as u64,
        );
        let code = team.seeder_code.clone();
        let records = config.seed_records;
        seeders.spawn(async move {
            let mut errors = seeder.enrol(&code).await.errors;
            errors.extend(seeder.sync().await.errors);
            if let Err(e) = seeder.seed(records) {
                errors.push(format!("a record could not be made: {e}"));
            }
            let pushed = seeder.sync().await;
            errors.extend(pushed.errors);
            if seeder.unsent() > 0 {
                errors.push(format!("{} records were not acknowledged", seeder.unsent()));
            }
            (t, seeder.created, errors)
        });
    }
    expected.resize(teams.len(), BTreeSet::new());
    while let Some(done) = seeders.join_next().await {
        let Ok((t, created, errors)) = done else {
            recorder.error("seeding: a seeding task failed".into());
            continue;
        };
        expected[t].extend(created);
        for e in errors {
            recorder.error(format!("seeding: {e}"));
        }
    }
    let seed_secs = seeding.elapsed().as_secs_f64();

    // The run.
    let t0 = Instant::now();
    let shared = Arc::new(Shared {
        config: config.clone(),
        t0,
        end: t0 + config.duration,
        recorder: Mutex::new(recorder),
    });
    let stop = Arc::new(tokio::sync::Notify::new());
    let sampler = tokio::spawn(sample(config.clone(), t0, stop.clone()));
    let mut rng = Rng::new(config.seed);
    let mut tasks = tokio::task::JoinSet::new();
    let mut codes: Vec<std::vec::IntoIter<String>> =
        teams.iter().map(|t| t.codes.clone().into_iter()).collect();
    for i in 0..config.tablets {
        let t = i % teams.len();
        let Some(code) = codes[t].next() else {
            shared.error("setup: a tablet got no enrolment code".into());
            continue;
        };
        let server = &config.servers[i % config.servers.len()];
        let tablet = Tablet::new(i, teams[t].id, server, client()?, rng.next_u64());
        let start = config.ramp_up.mul_f64(i as f64 / config.tablets as f64);
        // Offline from some time after the ramp-up, early enough that a sync after the
        // stretch falls within the run when the run is long enough.
        let offline = rng.chance(config.offline_fraction).then(|| {
            // The longest jittered interval is 1.5 times `sync_every`.
            let room = config.duration.saturating_sub(
                config.ramp_up + config.offline_for + config.sync_every.mul_f64(1.5),
            );
            let from = config.ramp_up + room.mul_f64(rng.unit());
            (from, from + config.offline_for)
        });
        let plan = Plan {
            start,
            offline,
            seed: rng.next_u64(),
        };
        tasks.spawn(live(tablet, code, plan, shared.clone()));
    }
    let mut tablets = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(tablet) => tablets.push(tablet),
            Err(_) => shared.error("a tablet's task failed".into()),
        }
    }
    let run_secs = t0.elapsed().as_secs_f64();

    // Settling: every tablet syncs until a round moves nothing (at most five rounds).
    let gate = Arc::new(Semaphore::new(config.settle_concurrency.max(1)));
    let mut settle_rounds = 0;
    for _ in 0..5 {
        settle_rounds += 1;
        let mut round = tokio::task::JoinSet::new();
        for mut tablet in tablets.drain(..) {
            let gate = gate.clone();
            let shared = shared.clone();
            round.spawn(async move {
                if !tablet.enrolled() {
                    return (tablet, false);
                }
                let _turn = gate.acquire().await;
                let started = Instant::now();
                let out = tablet.sync().await;
                shared.record(Kind::Final, started, &out);
                let moved = out.pushed > 0 || out.pulled > 0 || out.failed;
                (tablet, moved)
            });
        }
        let mut moved = false;
        while let Some(done) = round.join_next().await {
            match done {
                Ok((tablet, m)) => {
                    moved |= m;
                    tablets.push(tablet);
                }
                Err(_) => shared.error("a tablet's task failed while settling".into()),
            }
        }
        if !moved {
            break;
        }
    }
    stop.notify_one();
    let sampled = sampler
        .await
        .map_err(|e| LoadError::Config(e.to_string()))?;

    for tablet in &tablets {
        if let Some(t) = teams.iter().position(|t| t.id == tablet.team) {
            expected[t].extend(tablet.created.iter().copied());
        }
    }
    let convergence = check_convergence(&teams, &expected, &tablets);
    let recorder = Arc::try_unwrap(shared)
        .map(|s| {
            s.recorder
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
        })
        .map_err(|_| LoadError::Config("a tablet task outlived the run".into()))?;
    Ok(Report {
        config,
        setup_secs,
        seed_secs,
        run_secs,
        settle_rounds,
        recorder,
        processes: sampled.processes,
        db: sampled.db,
        tool_rss_peak: sampled.tool_peak,
        tool_cpu_secs: sampled.tool_cpu,
        convergence,
    })
}

/// Every enrolled tablet must hold exactly its team's records (the seed and everything
/// its teammates made), each with the same heads as the team's first tablet.
fn check_convergence(
    teams: &[TeamSetup],
    expected: &[BTreeSet<Uuid>],
    tablets: &[Tablet],
) -> Convergence {
    let mut c = Convergence {
        tablets: tablets.len(),
        records: expected.iter().map(BTreeSet::len).sum(),
        ..Convergence::default()
    };
    let mut reference: BTreeMap<Uuid, BTreeMap<Uuid, Vec<automerge::ChangeHash>>> = BTreeMap::new();
    let mut sorted: Vec<&Tablet> = tablets.iter().collect();
    sorted.sort_by_key(|t| t.index);
    for tablet in sorted {
        if !tablet.enrolled() {
            c.not_enrolled += 1;
            continue;
        }
        let Some(t) = teams.iter().position(|t| t.id == tablet.team) else {
            continue;
        };
        let held = tablet.holdings();
        let missing = expected[t]
            .iter()
            .filter(|id| !held.contains_key(id))
            .count();
        let unexpected = held.keys().filter(|id| !expected[t].contains(id)).count();
        let first = reference.entry(tablet.team).or_insert_with(|| held.clone());
        let diverged = held
            .iter()
            .filter(|(id, heads)| first.get(id).is_some_and(|h| h != *heads))
            .count();
        c.missing += missing;
        c.unexpected += unexpected;
        c.diverged += diverged;
        if missing == 0 && unexpected == 0 && diverged == 0 {
            c.converged += 1;
        }
    }
    c
}
