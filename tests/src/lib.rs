//! Harness for the end-to-end tests: a real `repere-server` process on loopback, device
//! stores in temporary directories, and a TCP proxy that cuts connections.

pub mod browser;
pub mod load;
pub mod pages;
pub mod proxy;
pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Duration as Days, Utc};
use repere_core::demo::DemoData;
use repere_core::sync::{SyncOptions, SyncProgress};
use repere_core::{Result, Store};
use repere_transport::HttpTransport;
use tempfile::TempDir;
use uuid::Uuid;

/// The server binary of the same profile: `cargo build --workspace` for the tests,
/// `cargo build --release -p repere-server` before `cargo bench -p repere-tests`.
pub fn server_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let bin = target.join(profile).join("repere-server");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace` first",
        bin.display()
    );
    bin
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The base URL of a PostgreSQL server (e.g. `postgres://postgres@127.0.0.1:5432/test`)
/// on which the end-to-end servers run, each on a throwaway database; unset: the embedded
/// SQLite file, as by default.
pub const DATABASE_ENV: &str = "REPERE_TEST_DATABASE_URL";

/// A throwaway PostgreSQL database, dropped with this (made and dropped with `psql`, so
/// that the harness needs no client library of its own).
pub struct TestDatabase {
    base: String,
    name: String,
}

impl TestDatabase {
    /// A new empty database on the server of [`DATABASE_ENV`]; `None` when it is unset.
    pub fn from_env() -> Option<TestDatabase> {
        let base = std::env::var(DATABASE_ENV).ok().filter(|u| !u.is_empty())?;
        let name = format!("repere_e2e_{}", Uuid::new_v4().simple());
        psql(&base, &format!("CREATE DATABASE {name}"));
        Some(TestDatabase { base, name })
    }

    /// The database's URL: the base URL with its database name replaced.
    pub fn url(&self) -> String {
        let (server, _) = self
            .base
            .rsplit_once('/')
            .expect("a database URL ends with /<database>");
        format!("{server}/{}", self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        psql(
            &self.base,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-qAtc", sql])
        .output()
        .expect("psql runs (scripts/postgres.sh installs it)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running server with its own data directory; killed when dropped.
pub struct TestServer {
    pub data: TempDir,
    /// The PostgreSQL database it runs on (shared by the instances of [`Self::instances`]),
    /// or `None`: the SQLite file of its data directory.
    pub database: Option<std::sync::Arc<TestDatabase>>,
    /// Holds the server key's file, apart from the data directory as in service; `None`
    /// for a demo server on a plaintext database.
    pub keys: Option<TempDir>,
    pub port: u16,
    child: Option<Child>,
    /// More `serve` flags, kept across restarts.
    args: Vec<String>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(&[])
    }

    /// A server started with more `serve` flags (e.g. `["--idle-timeout-secs", "2"]`).
    pub fn start_with(args: &[&str]) -> TestServer {
        let keys = tempfile::tempdir().expect("key dir");
        std::fs::write(
            keys.path().join("server.key"),
            format!("{}\n", "3c".repeat(32)),
        )
        .expect("key file");
        TestServer::spawned(args, Some(keys))
    }

    /// A server on SQLite whatever [`DATABASE_ENV`] says: for tests of its files (what is
    /// readable in them, backups of them).
    pub fn start_sqlite() -> TestServer {
        let keys = tempfile::tempdir().expect("key dir");
        std::fs::write(
            keys.path().join("server.key"),
            format!("{}\n", "3c".repeat(32)),
        )
        .expect("key file");
        TestServer::on(&[], Some(keys), None)
    }

    /// A `--demo` server without a key: its database is plaintext, so that tests can read
    /// every byte the server keeps. Always on SQLite: those bytes are its files.
    pub fn start_plaintext_demo() -> TestServer {
        TestServer::on(
            &["--demo", "--demo-password", "mot-de-passe-demo"],
            None,
            None,
        )
    }

    /// `n` servers on one PostgreSQL database (with one key), as behind a load balancer;
    /// `None` when [`DATABASE_ENV`] is unset.
    pub fn instances(n: usize, args: &[&str]) -> Option<Vec<TestServer>> {
        let database = std::sync::Arc::new(TestDatabase::from_env()?);
        Some(
            (0..n)
                .map(|_| {
                    let keys = tempfile::tempdir().expect("key dir");
                    std::fs::write(
                        keys.path().join("server.key"),
                        format!("{}\n", "3c".repeat(32)),
                    )
                    .expect("key file");
                    TestServer::on(args, Some(keys), Some(database.clone()))
                })
                .collect(),
        )
    }

    fn spawned(args: &[&str], keys: Option<TempDir>) -> TestServer {
        TestServer::on(
            args,
            keys,
            TestDatabase::from_env().map(std::sync::Arc::new),
        )
    }

    fn on(
        args: &[&str],
        keys: Option<TempDir>,
        database: Option<std::sync::Arc<TestDatabase>>,
    ) -> TestServer {
        let data = tempfile::tempdir().expect("temp dir");
        let mut server = TestServer {
            data,
            database,
            keys,
            port: free_port(),
            child: None,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        // `REPERE_TEST_SERVER_LOG=FILE`: the server's log (one line per sync with its
        // duration) goes there, to see where a test's or a benchmark's time goes.
        let log = std::env::var_os("REPERE_TEST_SERVER_LOG").and_then(|path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .ok()
        });
        let (level, out) = match &log {
            Some(file) => ("info", file.try_clone().map_or(Stdio::null(), Stdio::from)),
            None => ("warn", Stdio::null()),
        };
        let err = log.map_or(Stdio::null(), Stdio::from);
        let child = Command::new(server_bin())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                // Tests enrol many tablets from one address.
                "--enrol-per-minute",
                "100000",
            ])
            .args(self.data_args())
            .args(&self.args)
            .env_remove("REPERE_KEY")
            .env_remove("REPERE_KEY_FILE")
            .envs(self.key_env())
            .env("RUST_LOG", level)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.healthy() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not answer /healthz");
    }

    pub fn healthy(&self) -> bool {
        raw_request(
            self.port,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
    }

    /// SIGKILL: no chance to flush or clean up, as in a power cut.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The server process id (0 when it is not running).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where its data is: `--data-dir`, and `--database` on PostgreSQL.
    pub fn data_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = vec!["--data-dir".into(), self.data.path().as_os_str().to_owned()];
        if let Some(db) = &self.database {
            args.extend(["--database".into(), db.url().into()]);
        }
        args
    }

    /// The server key's file (what `--key-file` / `REPERE_KEY_FILE` names).
    pub fn key_file(&self) -> Option<std::path::PathBuf> {
        self.keys.as_ref().map(|k| k.path().join("server.key"))
    }

    fn key_env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        self.key_file()
            .map(|f| ("REPERE_KEY_FILE", f.into_os_string()))
            .into_iter()
            .collect()
    }

    /// Runs `repere-server admin …` on this server's data and returns its stdout, trimmed.
    pub fn admin(&self, args: &[&str]) -> String {
        self.try_admin(args)
            .unwrap_or_else(|stderr| panic!("admin {args:?} failed: {stderr}"))
    }

    /// Runs `repere-server admin …`: its stdout, or its stderr when it fails.
    pub fn try_admin(&self, args: &[&str]) -> std::result::Result<String, String> {
        let out = Command::new(server_bin())
            .arg("admin")
            .args(self.data_args())
            .args(args)
            .env_remove("REPERE_KEY")
            .env_remove("REPERE_KEY_FILE")
            .envs(self.key_env())
            .env("RUST_LOG", "warn")
            .output()
            .expect("admin runs");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// One organisation with `teams` teams; returns the team ids.
    pub fn setup(&self, teams: usize) -> Vec<Uuid> {
        let org = self.admin(&["create-org", "--name", "Organisation de test"]);
        (0..teams)
            .map(|i| {
                let id = self.admin(&[
                    "create-team",
                    "--org",
                    &org,
                    "--name",
                    &format!("Binôme {i}"),
                ]);
                Uuid::parse_str(&id).expect("team id")
            })
            .collect()
    }

    /// A coordinator of organisation `org` who signs in to the pages with `login` and
    /// `password` (`create-user`, then `set-password` reading REPERE_PASSWORD).
    pub fn coordinator(&self, org: &str, login: &str, password: &str) -> Uuid {
        let id = self.admin(&[
            "create-user",
            "--org",
            org,
            "--name",
            "Camille Coordination",
            "--role",
            "coordinator",
            "--login",
            login,
        ]);
        let out = Command::new(server_bin())
            .arg("admin")
            .args(self.data_args())
            .args(["set-password", "--user", &id])
            .env_remove("REPERE_KEY")
            .env_remove("REPERE_KEY_FILE")
            .envs(self.key_env())
            .env("REPERE_PASSWORD", password)
            .env("RUST_LOG", "warn")
            .output()
            .expect("admin runs");
        assert!(
            out.status.success(),
            "set-password: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Uuid::parse_str(&id).expect("user id")
    }

    pub fn code(&self, team: Uuid) -> String {
        self.admin(&["issue-code", "--team", &team.to_string()])
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends raw bytes and reads the whole answer (for malformed-request tests).
pub fn raw_request(port: u16, bytes: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(bytes).ok()?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Some(String::from_utf8_lossy(&out).to_string())
}

/// The status line and body of an HTTP answer.
pub fn status_of(response: &str) -> u16 {
    BufReader::new(response.as_bytes())
        .lines()
        .next()
        .and_then(|l| l.ok())
        .and_then(|l| l.split(' ').nth(1).and_then(|c| c.parse().ok()))
        .unwrap_or(0)
}

pub const KEY: [u8; 32] = [9; 32];

/// A tablet: an encrypted store, its team and a generator of fictional records.
pub struct Device {
    pub dir: TempDir,
    pub store: Store,
    pub demo: DemoData,
    pub team: Uuid,
}

impl Device {
    pub fn new(team: Uuid, seed: u64) -> Device {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("store.db"), &KEY).expect("store");
        let members = [
            Uuid::from_u128(u128::from(seed) * 2),
            Uuid::from_u128(u128::from(seed) * 2 + 1),
        ];
        let demo = DemoData::new(seed, team, members, Utc::now() - Days::days(1));
        Device {
            dir,
            store,
            demo,
            team,
        }
    }

    pub fn enrol(&mut self, url: &str, code: &str) -> Result<()> {
        let t = HttpTransport::new(url).map_err(|e| repere_core::Error::Network(e.to_string()))?;
        self.store
            .enrol(&t, url, code, "tablette de test", false)
            .map(drop)
    }

    pub fn enrolled(server: &TestServer, team: Uuid, seed: u64) -> Device {
        let mut d = Device::new(team, seed);
        d.enrol(&server.url(), &server.code(team)).expect("enrols");
        d
    }

    /// Syncs with the server at `url` (maybe a proxy) with fast retries.
    pub fn sync_via(&mut self, url: &str) -> Result<SyncProgress> {
        let t = HttpTransport::new(url).map_err(|e| repere_core::Error::Network(e.to_string()))?;
        self.store.sync(&t, &fast_retries(), &mut |_| {})
    }

    /// The bearer token the store keeps, for tests that send requests by hand.
    pub fn token(&mut self) -> String {
        self.store
            .sync_prepare(&SyncOptions::default(), &Default::default())
            .expect("an enrolled tablet")
            .token()
            .to_string()
    }

    pub fn sync(&mut self, server: &TestServer) -> Result<SyncProgress> {
        self.sync_via(&server.url())
    }
}

pub fn fast_retries() -> SyncOptions {
    SyncOptions {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..SyncOptions::default()
    }
}

/// Every record of a store with its document heads, for comparing replicas.
pub fn snapshot(store: &Store) -> Vec<(Uuid, Vec<String>, String)> {
    store
        .ids()
        .expect("ids")
        .into_iter()
        .map(|(_, id)| {
            let mut heads: Vec<String> = store
                .heads(id)
                .expect("heads")
                .iter()
                .map(|h| h.to_string())
                .collect();
            heads.sort();
            (
                id,
                heads,
                format!("{:?}", store.record(id).expect("readable")),
            )
        })
        .collect()
}
