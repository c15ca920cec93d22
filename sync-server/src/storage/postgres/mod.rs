//! The PostgreSQL storage, for several server instances on one database. Schema in
//! `sync-server/migrations/postgres/NNNN_*.sql`, applied in order under an advisory lock
//! (instances starting together migrate once) and tracked in `schema_version`.
//!
//! # Connections
//!
//! The client is the blocking `postgres` crate (the hub runs inside `spawn_blocking`),
//! behind a small bounded pool of our own ([`pool`]): a mutex over idle connections and a
//! condition variable, with no thread of its own and no dependency.
//!
//! # Transactions and log positions
//!
//! `read` is `REPEATABLE READ READ ONLY`: one snapshot. `write` runs `work` at
//! `REPEATABLE READ` too, so that the whole sync (its pushes, then its pull) sees one
//! snapshot and two syncs merging the same record cannot both win (the second fails with
//! a serialization failure and runs `work` again).
//!
//! Positions (the log's, the roster's, the decisions') are rows of `counters`, read in the
//! snapshot (`last_seq` is the highest position committed before it) and taken with an
//! `UPDATE … RETURNING` while holding the transaction-scoped advisory lock [`LOG_LOCK`],
//! taken just before the first position. Transactions that take positions therefore
//! commit one after another in position order (the storage contract, "Log positions").
//! When one started its snapshot before another one took positions and committed, its own
//! `UPDATE` of the counter fails with a serialization failure: it would otherwise pull
//! around a position it cannot see while handing out the next one. `work` then runs
//! again, this time at `READ COMMITTED` with the lock taken first: nothing can take a
//! position while it runs, so its reads of the log are stable, and it cannot fail that
//! way twice. Deadlocks (40P01) are retried the same way.

mod pool;
mod register;
pub mod testing;
mod tx;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Config, IsolationLevel};

use self::pool::{Conn, Pool};
pub use self::register::TableRegister;
use self::tx::{Failure, PgTx};
use super::{ReadTx, Storage, StorageError, StorageResult, Tx};

const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_initial.sql"),
    include_str!("../../../migrations/postgres/0002_rate_buckets.sql"),
    include_str!("../../../migrations/postgres/0003_youth_summary.sql"),
];

/// The advisory lock held by a transaction while it takes log, roster or decision
/// positions (a constant of ours: "repere" in ASCII).
pub(crate) const LOG_LOCK: i64 = 0x7265_7065_7265;
/// The advisory lock (session-scoped) under which an instance migrates the schema.
const MIGRATION_LOCK: i64 = LOG_LOCK + 1;

/// How many connections one instance opens at most.
const POOL_SIZE: usize = 8;
/// How long a request waits for a free connection before failing.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// How many times `work` runs at most when transactions keep conflicting.
const ATTEMPTS: usize = 8;

/// The tables that hold erased content until their dead rows are vacuumed.
const ERASED_TABLES: &str =
    "documents, record_view, record_view_youth, visit_reviews, access_grants";

pub struct PostgresStorage {
    pool: Pool,
    config: Config,
}

/// A PostgreSQL error as the server reports it: the server's message and SQLSTATE (never
/// the connection URL; the crate's messages do not carry the password).
pub(crate) fn backend(e: &postgres::Error) -> StorageError {
    StorageError::Backend(match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    })
}

/// Whether running the transaction again can succeed (another one got in its way).
pub(crate) fn is_conflict(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
    )
}

/// Parses a connection URL without echoing it (it may hold a password).
pub(crate) fn parse_url(url: &str) -> StorageResult<Config> {
    url.parse::<Config>().map_err(|_| {
        StorageError::Backend("the database URL is not a valid PostgreSQL connection URL".into())
    })
}

impl PostgresStorage {
    /// Connects to the database of `url` (`postgres://user[:password]@host[:port]/name`)
    /// and migrates it; `NewerSchema` when a newer server migrated it already.
    pub fn connect(url: &str) -> StorageResult<PostgresStorage> {
        let config = parse_url(url)?;
        let pool = Pool::new(config.clone(), POOL_SIZE, POOL_WAIT);
        {
            let mut conn = pool.get()?;
            migrate(&mut conn)?;
        }
        Ok(PostgresStorage { pool, config })
    }

    /// Puts a backup (made by `backup`) in place of the server's tables (the `public`
    /// schema), in one transaction: the register (a schema of its own) stays. Every
    /// instance must be stopped; the caller then reapplies the register and gives the log
    /// a new epoch, as after a SQLite restore.
    pub fn restore_into(url: &str, backup: &Path) -> StorageResult<()> {
        let config = parse_url(url)?;
        // The archive must be one of ours before anything is replaced.
        let listed = Command::new("pg_restore")
            .arg("--list")
            .arg(backup)
            .output()
            .map_err(|e| tool_error("pg_restore", &e))?;
        if !listed.status.success()
            || !String::from_utf8_lossy(&listed.stdout).contains(" TABLE public schema_version ")
        {
            return Err(StorageError::Backend(
                "the file is not a backup of a Repère database (pg_dump archive)".into(),
            ));
        }
        // pg_restore writes the archive as SQL; psql runs it after the old tables are
        // dropped, in one transaction committed only once the whole script went through
        // (a failed or cut script is rolled back when psql ends).
        let mut script = Command::new("pg_restore")
            .args(["--no-owner", "--no-privileges", "--file=-"])
            .arg(backup)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| tool_error("pg_restore", &e))?;
        let mut psql = Command::new("psql");
        psql.args(["--quiet", "--no-psqlrc", "--set=ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        set_pg_env(&mut psql, &config);
        let mut psql = psql.spawn().map_err(|e| tool_error("psql", &e))?;
        let mut to = psql.stdin.take();
        let fed = match (&mut to, script.stdout.take()) {
            (Some(to), Some(mut from)) => to
                .write_all(b"BEGIN;\nDROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\n")
                .and_then(|()| std::io::copy(&mut from, to).map(drop)),
            _ => Err(std::io::Error::other("no pipe to the restore")),
        };
        let script = script.wait_with_output();
        let complete = fed.is_ok() && script.as_ref().is_ok_and(|s| s.status.success());
        if let (true, Some(to)) = (complete, &mut to) {
            to.write_all(b"COMMIT;\n")
                .map_err(|e| StorageError::Backend(format!("the restore did not run: {e}")))?;
        }
        drop(to);
        let psql = psql.wait_with_output();
        let failed = |what: &str, out: &std::process::Output| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            StorageError::Backend(format!(
                "{what} failed: {}",
                stderr.lines().next().unwrap_or("no message").trim()
            ))
        };
        match (fed, script, psql) {
            (_, Ok(s), _) if !s.status.success() => Err(failed("pg_restore", &s)),
            (_, _, Ok(p)) if !p.status.success() => Err(failed("psql", &p)),
            (Ok(()), Ok(_), Ok(_)) => Ok(()),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(StorageError::Backend(
                format!("the restore did not run: {e}"),
            )),
        }
    }

    /// The erasure register of this database (a table of its own, left out of backups).
    pub fn erasure_register(&self) -> StorageResult<TableRegister> {
        TableRegister::open(self.config.clone())
    }
}

enum Attempt {
    Committed,
    /// Another transaction got in the way: run `work` again.
    Conflicted,
}

fn run_once(
    conn: &mut Conn,
    pessimistic: bool,
    work: &mut dyn FnMut(&mut dyn Tx) -> StorageResult<()>,
) -> StorageResult<Attempt> {
    let level = if pessimistic {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::RepeatableRead
    };
    let (cache, client) = conn.parts();
    let tx = client
        .build_transaction()
        .isolation_level(level)
        .start()
        .map_err(|e| backend(&e))?;
    let mut ptx = PgTx::new(tx, cache);
    let result = if pessimistic {
        ptx.take_log_lock().and_then(|()| work(&mut ptx))
    } else {
        work(&mut ptx)
    };
    // Dropping the transaction without committing rolls it back.
    match (result, ptx.take_failure()) {
        // Whatever `work` made of the failed statement, it runs again.
        (_, Some(Failure::Conflict)) => Ok(Attempt::Conflicted),
        // A statement failed and `work` went on: nothing may be committed.
        (Ok(()), Some(Failure::Other(e))) | (Err(e), _) => Err(e),
        (Ok(()), None) => match ptx.commit() {
            Ok(()) => Ok(Attempt::Committed),
            Err(e) if is_conflict(&e) => Ok(Attempt::Conflicted),
            Err(e) => Err(backend(&e)),
        },
    }
}

fn migrate(conn: &mut Conn) -> StorageResult<()> {
    let client = conn.client();
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| backend(&e))?;
    let result = migrate_locked(client);
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    result?;
    unlocked.map_err(|e| backend(&e))?;
    Ok(())
}

fn migrate_locked(client: &mut postgres::Client) -> StorageResult<()> {
    let known = MIGRATIONS.len() as u32;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 id       INTEGER PRIMARY KEY CHECK (id = 1),
                 version  INTEGER NOT NULL
             );
             INSERT INTO schema_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;",
        )
        .map_err(|e| backend(&e))?;
    let found: i32 = client
        .query_one("SELECT version FROM schema_version WHERE id = 1", &[])
        .and_then(|r| r.try_get(0))
        .map_err(|e| backend(&e))?;
    let found = u32::try_from(found)
        .map_err(|_| StorageError::Corrupt("negative schema version".into()))?;
    if found > known {
        return Err(StorageError::NewerSchema { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i32 + 1;
        let mut tx = client.transaction().map_err(|e| backend(&e))?;
        tx.batch_execute(sql).map_err(|e| backend(&e))?;
        tx.execute(
            "UPDATE schema_version SET version = $1 WHERE id = 1",
            &[&version],
        )
        .map_err(|e| backend(&e))?;
        tx.commit().map_err(|e| backend(&e))?;
        tracing::info!(version, "database schema migrated");
    }
    register::create(client)
}

impl Storage for PostgresStorage {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> StorageResult<()>) -> StorageResult<()> {
        let mut conn = self.pool.get()?;
        for attempt in 1..=ATTEMPTS {
            // The first run is optimistic; the next ones hold the log lock throughout.
            if let Attempt::Committed = run_once(&mut conn, attempt > 1, work)? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(attempt as u64 * 2));
        }
        Err(StorageError::Backend(
            "the transaction kept conflicting with others".into(),
        ))
    }

    /// A `pg_dump` archive (custom format) from one snapshot, without the erasure register
    /// (a restored backup must not bring back an older register).
    fn backup(&self, to: &Path) -> StorageResult<()> {
        if to.exists() {
            return Err(StorageError::Backend(format!(
                "{} already exists: choose a new file for the backup",
                to.display()
            )));
        }
        let mut cmd = Command::new("pg_dump");
        cmd.arg("--format=custom")
            .arg(format!("--exclude-schema={}", register::SCHEMA))
            .arg("--file")
            .arg(to);
        // The connection goes through the environment: a password is not shown by `ps`.
        set_pg_env(&mut cmd, &self.config);
        let out = cmd.output().map_err(|e| tool_error("pg_dump", &e))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(to);
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(StorageError::Backend(format!(
                "pg_dump failed: {}",
                stderr.lines().next().unwrap_or("no message").trim()
            )));
        }
        Ok(())
    }

    /// PostgreSQL keeps a deleted row as a dead tuple in its page (and its TOAST chunks)
    /// until VACUUM prunes it, so the tables that held the erased content are vacuumed
    /// now. The server controls no other side file. What PostgreSQL itself still holds is
    /// outside its reach: pruned space is made free, not zeroed, until rows overwrite it,
    /// and the write-ahead log (and any archive or replica of it) keeps the old pages
    /// until its segments are recycled — protect the database's disks and WAL archive
    /// with encryption.
    fn scrub(&self) -> StorageResult<()> {
        let mut conn = self.pool.get()?;
        conn.client()
            .batch_execute(&format!("VACUUM {ERASED_TABLES}"))
            .map_err(|e| backend(&e))
    }

    fn read(
        &self,
        work: &mut dyn FnMut(&mut dyn ReadTx) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let mut conn = self.pool.get()?;
        let (cache, client) = conn.parts();
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(|e| backend(&e))?;
        let mut ptx = PgTx::new(tx, cache);
        work(&mut ptx)?;
        if let Some(Failure::Other(e)) = ptx.take_failure() {
            return Err(e);
        }
        // Nothing to keep: the read ends with a rollback (on drop).
        Ok(())
    }

    fn size_bytes(&self) -> StorageResult<u64> {
        let mut conn = self.pool.get()?;
        let size: i64 = conn
            .client()
            .query_one("SELECT pg_database_size(current_database())", &[])
            .and_then(|r| r.try_get(0))
            .map_err(|e| backend(&e))?;
        Ok(size.max(0) as u64)
    }

    /// A connection within `within`, a read of a real table and the log lock taken and
    /// given back, under a statement timeout of what is left.
    fn health(&self, within: Duration) -> Result<(), &'static str> {
        let deadline = std::time::Instant::now() + within;
        let Ok(mut conn) = self.pool.get_within(within) else {
            return Err("no database connection");
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let timeout = format!("{}ms", left.as_millis().max(1));
        let client = conn.client();
        let checked = client.transaction().and_then(|mut tx| {
            tx.execute(
                "SELECT set_config('statement_timeout', $1, true)",
                &[&timeout],
            )?;
            tx.query_one("SELECT count(*) FROM organisations", &[])?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOG_LOCK])?;
            tx.rollback()
        });
        checked.map_err(|e| {
            tracing::warn!(error = %backend(&e), "health check: database query failed");
            if e.code() == Some(&SqlState::QUERY_CANCELED) {
                "database write lock held too long"
            } else {
                "database query failed"
            }
        })
    }
}

fn tool_error(tool: &str, e: &std::io::Error) -> StorageError {
    StorageError::Backend(if e.kind() == std::io::ErrorKind::NotFound {
        format!("{tool} is not installed (PostgreSQL's client tools are needed for backups)")
    } else {
        format!("cannot run {tool}: {e}")
    })
}

/// The connection's settings as libpq's environment variables (for `pg_dump`, `psql`).
fn set_pg_env(cmd: &mut Command, config: &Config) {
    use postgres::config::Host;
    if let Some(host) = config.get_hosts().first() {
        match host {
            Host::Tcp(name) => cmd.env("PGHOST", name),
            Host::Unix(path) => cmd.env("PGHOST", path),
        };
    }
    if let Some(port) = config.get_ports().first() {
        cmd.env("PGPORT", port.to_string());
    }
    if let Some(user) = config.get_user() {
        cmd.env("PGUSER", user);
    }
    if let Some(password) = config.get_password() {
        cmd.env("PGPASSWORD", String::from_utf8_lossy(password).as_ref());
    }
    if let Some(name) = config.get_dbname() {
        cmd.env("PGDATABASE", name);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use postgres::NoTls;
    use uuid::Uuid;

    use super::testing::{TestDatabase, fresh_database};
    use super::*;
    use crate::storage::Tombstone;
    use crate::storage::register::{ErasureRegister, Rewrite};

    /// A fresh database, or `None` (with a note) when no PostgreSQL server is given.
    fn database() -> Option<TestDatabase> {
        match std::env::var("REPERE_TEST_DATABASE_URL") {
            Ok(base) if !base.is_empty() => Some(fresh_database(&base).expect("database")),
            _ => {
                eprintln!("skipped: set REPERE_TEST_DATABASE_URL to run the PostgreSQL tests");
                None
            }
        }
    }

    #[test]
    fn a_database_migrated_by_a_newer_server_is_refused() {
        let Some(db) = database() else { return };
        drop(PostgresStorage::connect(db.url()).expect("migrates"));
        let mut client = parse_url(db.url())
            .expect("url")
            .connect(NoTls)
            .expect("client");
        client
            .batch_execute("UPDATE schema_version SET version = 99")
            .expect("newer");
        assert!(matches!(
            PostgresStorage::connect(db.url()),
            Err(StorageError::NewerSchema { found: 99, known }) if known == MIGRATIONS.len() as u32
        ));
    }

    #[test]
    fn the_register_is_shared_and_left_out_of_backups() {
        let Some(db) = database() else { return };
        let storage = PostgresStorage::connect(db.url()).expect("storage");
        let register = ErasureRegister::in_table(storage.erasure_register().expect("register"));
        let at = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
        let erased = Tombstone {
            id: Uuid::now_v7(),
            team_id: Uuid::now_v7(),
            seq: 3,
            erased_at: at,
        };
        let rewrite = Rewrite {
            id: Uuid::now_v7(),
            team_id: erased.team_id,
            at,
            generation: 2,
            fields: vec!["notes".into(), "alias".into()],
        };
        register
            .append(std::slice::from_ref(&erased))
            .expect("erasure");
        register
            .append_rewrites(std::slice::from_ref(&rewrite))
            .expect("rewrite");
        // Another instance reads the same register.
        let other = PostgresStorage::connect(db.url()).expect("other");
        let entries = ErasureRegister::in_table(other.erasure_register().expect("register"))
            .entries()
            .expect("entries");
        assert_eq!(entries.erased.len(), 1);
        assert_eq!(
            (entries.erased[0].id, entries.erased[0].erased_at),
            (erased.id, at)
        );
        assert_eq!(entries.rewritten, vec![rewrite]);

        let dir = tempfile::tempdir().expect("dir");
        let archive = dir.path().join("backup.dump");
        storage.backup(&archive).expect("backup");
        let listed = Command::new("pg_restore")
            .arg("--list")
            .arg(&archive)
            .output()
            .expect("pg_restore");
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.contains("TABLE public documents"), "{listed}");
        assert!(!listed.contains(register::SCHEMA), "{listed}");
        assert!(storage.backup(&archive).is_err(), "never over a file");
    }

    #[test]
    fn a_restore_puts_the_backup_back_and_keeps_the_register() {
        let Some(db) = database() else { return };
        let pg = PostgresStorage::connect(db.url()).expect("storage");
        let storage: &dyn Storage = &pg;
        let org = |name: &str| crate::storage::Organisation {
            id: Uuid::now_v7(),
            name: name.into(),
            created_at: DateTime::from_timestamp_millis(1_700_000_000_000).expect("time"),
        };
        let (kept, later) = (org("avant"), org("après"));
        let insert = |o: &crate::storage::Organisation| {
            storage
                .write_with(|tx| -> StorageResult<()> { tx.insert_organisation(o) })
                .expect("insert")
        };
        insert(&kept);
        let dir = tempfile::tempdir().expect("dir");
        let archive = dir.path().join("backup.dump");
        storage.backup(&archive).expect("backup");
        insert(&later);
        let register = ErasureRegister::in_table(pg.erasure_register().expect("register"));
        let erased = Tombstone {
            id: Uuid::now_v7(),
            team_id: Uuid::now_v7(),
            seq: 1,
            erased_at: kept.created_at,
        };
        register
            .append(std::slice::from_ref(&erased))
            .expect("registered");
        drop(pg);

        let not_ours = dir.path().join("not-a-backup");
        std::fs::write(&not_ours, b"nothing").expect("file");
        assert!(PostgresStorage::restore_into(db.url(), &not_ours).is_err());
        PostgresStorage::restore_into(db.url(), &archive).expect("restore");
        let pg = PostgresStorage::connect(db.url()).expect("reopen");
        let orgs = (&pg as &dyn Storage)
            .read_with(|tx| -> StorageResult<_> { tx.organisations() })
            .expect("read");
        assert_eq!(orgs, vec![kept]);
        let register = ErasureRegister::in_table(pg.erasure_register().expect("register"));
        assert_eq!(register.entries().expect("entries").erased.len(), 1);
    }

    #[test]
    fn health_size_and_scrub_answer() {
        let Some(db) = database() else { return };
        let storage = PostgresStorage::connect(db.url()).expect("storage");
        assert_eq!(storage.health(Duration::from_secs(2)), Ok(()));
        assert!(storage.size_bytes().expect("size") > 0);
        storage.scrub().expect("vacuum");
    }

    #[test]
    fn a_health_check_fails_while_the_log_lock_is_held() {
        let Some(db) = database() else { return };
        let storage = PostgresStorage::connect(db.url()).expect("storage");
        let mut client = parse_url(db.url())
            .expect("url")
            .connect(NoTls)
            .expect("client");
        let mut holder = client.transaction().expect("tx");
        holder
            .execute("SELECT pg_advisory_xact_lock($1)", &[&LOG_LOCK])
            .expect("lock");
        let started = std::time::Instant::now();
        assert_eq!(
            storage.health(Duration::from_millis(300)),
            Err("database write lock held too long")
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        holder.rollback().expect("release");
        assert_eq!(storage.health(Duration::from_secs(2)), Ok(()));
    }
}
