//! The embedded storage: one SQLite file (`repere.db` in the data directory), WAL mode,
//! `synchronous = FULL` (a committed sync survives a power cut), one writer connection and
//! one reader connection, each behind a mutex. Schema in `sync-server/migrations/NNNN_*.sql`,
//! applied in order and tracked with `PRAGMA user_version`.
//!
//! rusqlite here is the workspace's SQLCipher build; the server file is not encrypted
//! (no key is set): protect the data directory with the machine's disk encryption.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use repere_core::RecordKind;
use repere_core::indicators::Targets;
use rusqlite::types::Value as SqlValue;
use rusqlite::{
    Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params, params_from_iter,
};
use uuid::Uuid;

use super::{
    AccessGrant, AuditEntry, Bucket, Credentials, Departure, Device, DocumentWrite, EnrolmentCode,
    ErasureDecision, ErasureExecuted, ErasureRequest, Grantee, LogEntry, LoginChallenge,
    Organisation, ReadTx, RecordFields, Role, SecretHash, Session, Storage, StorageError,
    StorageResult, StoredDocument, Team, TeamCounts, TeamMember, Tombstone, Transfer,
    TransferState, Tx, User, UserTotp, ViewRecord, ViewWrite, VisitFilter, VisitReview, VisitRow,
    VisitState, WipeOrder,
};

use crate::keys::ServerKey;

/// The database file inside the data directory.
pub const DB_FILE: &str = "repere.db";

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_initial.sql"),
    include_str!("../../migrations/0002_coordinators.sql"),
    include_str!("../../migrations/0003_record_fields.sql"),
    include_str!("../../migrations/0004_coordinator_accounts.sql"),
    include_str!("../../migrations/0005_device_writers.sql"),
    include_str!("../../migrations/0006_record_generations.sql"),
    include_str!("../../migrations/0007_retention.sql"),
    include_str!("../../migrations/0008_erasure_requests.sql"),
    include_str!("../../migrations/0009_team_members.sql"),
    include_str!("../../migrations/0010_transfers.sql"),
    include_str!("../../migrations/0011_device_reports.sql"),
    include_str!("../../migrations/0012_access_grants.sql"),
    include_str!("../../migrations/0013_rate_buckets.sql"),
];

/// How long a writer waits for another process (e.g. an admin command) holding the lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct SqliteStorage {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        StorageError::Backend(e.to_string())
    }
}

impl SqliteStorage {
    /// Opens (creating if needed) `repere.db` in `data_dir`, and migrates it. With a key
    /// the database is encrypted (SQLCipher); a plaintext database found there is
    /// encrypted once, in place. Without a key (demo, development) it is plaintext.
    pub fn open_dir(data_dir: &Path, key: Option<&ServerKey>) -> StorageResult<SqliteStorage> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StorageError::Backend(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(DB_FILE);
        if let Some(key) = key
            && is_plaintext(&path)?
        {
            encrypt_in_place(&path, key)?;
        }
        Self::open(&path, key)
    }

    /// Puts a backup (made by `backup`) in place of the database of `data_dir`. The server
    /// must be stopped. The caller then gives the log a new epoch (`Hub::new_log_epoch`).
    pub fn restore_into(
        data_dir: &Path,
        backup: &Path,
        key: Option<&ServerKey>,
    ) -> StorageResult<()> {
        let io = |what: &str, e: std::io::Error| StorageError::Backend(format!("{what}: {e}"));
        // The backup must open as a database of ours before anything is replaced.
        drop(Self::open(backup, key)?);
        std::fs::create_dir_all(data_dir).map_err(|e| io("cannot create the data directory", e))?;
        let target = data_dir.join(DB_FILE);
        let staged = data_dir.join(format!("{DB_FILE}.restoring"));
        std::fs::copy(backup, &staged).map_err(|e| io("cannot copy the backup", e))?;
        remove_wal_files(&target)?;
        std::fs::rename(&staged, &target).map_err(|e| io("cannot put the backup in place", e))?;
        Ok(())
    }

    pub fn open(path: &Path, key: Option<&ServerKey>) -> StorageResult<SqliteStorage> {
        let mut writer = connect(path, key)?;
        migrate(&mut writer)?;
        let reader = connect(path, key)?;
        Ok(SqliteStorage {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }
}

/// SQLite's own header: a database written in clear.
const PLAINTEXT_HEADER: &[u8; 16] = b"SQLite format 3\0";

fn is_plaintext(path: &Path) -> StorageResult<bool> {
    use std::io::Read;
    let mut header = [0u8; 16];
    match std::fs::File::open(path) {
        Ok(mut file) => Ok(file.read_exact(&mut header).is_ok() && &header == PLAINTEXT_HEADER),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StorageError::Backend(format!(
            "cannot read the database: {e}"
        ))),
    }
}

/// Removes a database's WAL and shared-memory files, if any (before a file is put in its
/// place, so that no frame of the old one is applied to the new one).
fn remove_wal_files(db: &Path) -> StorageResult<()> {
    for suffix in ["-wal", "-shm"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StorageError::Backend(format!(
                    "cannot remove the old write-ahead log: {e}"
                )));
            }
        }
    }
    Ok(())
}

/// Rewrites a plaintext database encrypted under `key` (once, when a key is first given):
/// an encrypted copy is made beside it, then put in its place with the plaintext WAL gone.
fn encrypt_in_place(path: &Path, key: &ServerKey) -> StorageResult<()> {
    let staged = path.with_extension("db.encrypting");
    let _ = std::fs::remove_file(&staged);
    let target = staged.to_str().ok_or_else(|| {
        StorageError::Backend("the data directory path is not valid UTF-8".into())
    })?;
    {
        let conn = Connection::open(path)?;
        let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        conn.execute(
            &format!(
                "ATTACH DATABASE ?1 AS encrypted KEY {}",
                key.sqlcipher_key()
            ),
            [target],
        )?;
        conn.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
        conn.pragma_update(Some("encrypted"), "user_version", version)?;
        conn.execute_batch("DETACH DATABASE encrypted")?;
    }
    remove_wal_files(path)?;
    std::fs::rename(&staged, path).map_err(|e| {
        StorageError::Backend(format!("cannot put the encrypted database in place: {e}"))
    })?;
    tracing::info!("the database was encrypted with the server key");
    Ok(())
}

fn connect(path: &Path, key: Option<&ServerKey>) -> StorageResult<Connection> {
    let conn = Connection::open(path)?;
    if let Some(key) = key {
        conn.execute_batch(&format!("PRAGMA key = {};", key.sqlcipher_key()))?;
    }
    // The first read tells a wrong key (or a missing one) from a working database.
    if conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .is_err()
    {
        return Err(StorageError::Backend(match key {
            Some(_) => "the database cannot be read with this key (wrong key file?)".into(),
            None => {
                "the database is encrypted: give its key (--key-file or REPERE_KEY_FILE)".into()
            }
        }));
    }
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // journal_mode answers with a row.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::Backend(format!(
            "cannot use WAL mode (got {mode})"
        )));
    }
    // secure_delete: an erased record's bytes are overwritten, not left in free pages.
    // 64 MB of page cache per connection: every page read from disk is decrypted, and a
    // tablet's initial pull reads what the others just pushed.
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;
         PRAGMA cache_size = -65536;",
    )?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> StorageResult<()> {
    let known = MIGRATIONS.len() as u32;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StorageError::NewerSchema { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as u32)?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    tx.commit()?;
    Ok(())
}

/// A poisoned mutex only means a request panicked while holding it; the transaction it had
/// open was rolled back when it was dropped, so the connection is fine to reuse.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Storage for SqliteStorage {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> StorageResult<()>) -> StorageResult<()> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut stx = SqliteTx { tx };
        work(&mut stx)?;
        stx.tx.commit()?;
        Ok(())
    }

    fn backup(&self, to: &Path) -> StorageResult<()> {
        if to.exists() {
            return Err(StorageError::Backend(format!(
                "{} already exists: choose a new file for the backup",
                to.display()
            )));
        }
        let target = to
            .to_str()
            .ok_or_else(|| StorageError::Backend("the backup path is not valid UTF-8".into()))?;
        // VACUUM INTO writes a consistent, compacted copy from one read snapshot.
        lock(&self.reader).execute("VACUUM INTO ?1", [target])?;
        Ok(())
    }

    /// The WAL still holds the page images from before the erasure: they are copied into
    /// the database (where `secure_delete` zeroed the rows) and the WAL is cut to nothing.
    /// A reader in the middle of a transaction can hold the checkpoint back: it is retried
    /// briefly, then reported.
    fn scrub(&self) -> StorageResult<()> {
        let writer = lock(&self.writer);
        for _ in 0..50 {
            let (busy, _, _): (i64, i64, i64) =
                writer.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            if busy == 0 {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(StorageError::Backend(
            "the write-ahead log could not be emptied after an erasure (a long read holds it)"
                .into(),
        ))
    }

    fn read(
        &self,
        work: &mut dyn FnMut(&mut dyn ReadTx) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let mut conn = lock(&self.reader);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let mut stx = SqliteTx { tx };
        work(&mut stx)?;
        // Nothing to keep: ending the read.
        stx.tx.rollback()?;
        Ok(())
    }

    fn size_bytes(&self) -> StorageResult<u64> {
        // The files' lengths (SQLCipher answers `PRAGMA page_size` with its own setting).
        let path = lock(&self.reader)
            .path()
            .map(std::path::PathBuf::from)
            .ok_or_else(|| StorageError::Backend("the database has no file".into()))?;
        let meta = std::fs::metadata(&path)
            .map_err(|e| StorageError::Backend(format!("cannot read the database's size: {e}")))?;
        // Recent writes live in the write-ahead log until a checkpoint moves them.
        let mut wal = path.into_os_string();
        wal.push("-wal");
        let wal = std::fs::metadata(&wal).map_or(0, |m| m.len());
        Ok(meta.len() + wal)
    }

    fn health(&self, within: Duration) -> Result<(), &'static str> {
        let deadline = Instant::now() + within;
        let Some(reader) = lock_before(&self.reader, deadline) else {
            return Err("database reads blocked");
        };
        // A read of a real table: the key still opens the file and the schema is there.
        if let Err(e) = reader.query_row("SELECT count(*) FROM organisations", [], |r| {
            r.get::<_, i64>(0)
        }) {
            tracing::warn!(error = %e, "health check: database query failed");
            return Err("database query failed");
        }
        drop(reader);
        // The write lock, in this process (a transaction running) and in the file (another
        // process, e.g. an admin command): taken and given back, within what is left.
        let Some(writer) = lock_before(&self.writer, deadline) else {
            return Err("database write lock held too long");
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let taken = writer
            .busy_timeout(left)
            .and_then(|()| writer.execute_batch("BEGIN IMMEDIATE; ROLLBACK;"));
        let restored = writer.busy_timeout(BUSY_TIMEOUT);
        match (taken, restored) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "health check: write lock not taken");
                Err("database write lock held too long")
            }
        }
    }
}

/// The mutex once it is free, polled until `deadline`; `None` if still held then. (A
/// health check must answer even when a request holds the connection.)
fn lock_before(m: &Mutex<Connection>, deadline: Instant) -> Option<MutexGuard<'_, Connection>> {
    loop {
        match m.try_lock() {
            Ok(guard) => return Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    }
}

struct SqliteTx<'c> {
    tx: Transaction<'c>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt_col("time out of range"))
}

fn opt_time(ms: Option<i64>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    ms.map(time).transpose()
}

fn corrupt_col(what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Blob,
        Box::new(StorageError::Corrupt(what.to_string())),
    )
}

fn uuid_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let bytes: Vec<u8> = row.get(i)?;
    Uuid::from_slice(&bytes).map_err(|_| corrupt_col("malformed id"))
}

fn opt_uuid_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Uuid>> {
    let bytes: Option<Vec<u8>> = row.get(i)?;
    bytes
        .map(|b| Uuid::from_slice(&b).map_err(|_| corrupt_col("malformed id")))
        .transpose()
}

fn hash_at(row: &Row<'_>, i: usize) -> rusqlite::Result<SecretHash> {
    let bytes: Vec<u8> = row.get(i)?;
    bytes.try_into().map_err(|_| corrupt_col("malformed hash"))
}

fn heads_to_blob(heads: &[[u8; 32]]) -> Vec<u8> {
    heads.iter().flatten().copied().collect()
}

fn heads_from_blob(bytes: &[u8]) -> rusqlite::Result<Vec<[u8; 32]>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(corrupt_col("malformed heads"));
    }
    Ok(bytes
        .chunks_exact(32)
        .filter_map(|c| <[u8; 32]>::try_from(c).ok())
        .collect())
}

fn b(id: &Uuid) -> &[u8] {
    id.as_bytes().as_slice()
}

fn seq_of(v: i64) -> rusqlite::Result<u64> {
    u64::try_from(v).map_err(|_| corrupt_col("negative log position"))
}

fn org_row(r: &Row<'_>) -> rusqlite::Result<Organisation> {
    Ok(Organisation {
        id: uuid_at(r, 0)?,
        name: r.get(1)?,
        created_at: time(r.get(2)?)?,
    })
}

fn team_row(r: &Row<'_>) -> rusqlite::Result<Team> {
    Ok(Team {
        id: uuid_at(r, 0)?,
        organisation_id: uuid_at(r, 1)?,
        name: r.get(2)?,
        created_at: time(r.get(3)?)?,
    })
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(3)?;
    Ok(User {
        id: uuid_at(r, 0)?,
        organisation_id: uuid_at(r, 1)?,
        name: r.get(2)?,
        role: Role::parse(&role).ok_or_else(|| corrupt_col("unknown role"))?,
        created_at: time(r.get(4)?)?,
    })
}

/// How many columns `DEVICE_COLUMNS` selects.
const DEVICE_COLUMN_COUNT: usize = 13;
const DEVICE_COLUMNS: &str =
    "d.id, d.team_id, t.organisation_id, d.label, d.enrolled_at, d.revoked_at, d.last_sync_at,
     d.writer, d.applied_seq, d.wipe, d.wipe_sent_at, d.app_version, d.unsent
     FROM devices d JOIN teams t ON t.id = d.team_id";

fn device_row(r: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: uuid_at(r, 0)?,
        team_id: uuid_at(r, 1)?,
        organisation_id: uuid_at(r, 2)?,
        label: r.get(3)?,
        enrolled_at: time(r.get(4)?)?,
        revoked_at: opt_time(r.get(5)?)?,
        last_sync_at: opt_time(r.get(6)?)?,
        writer: opt_uuid_at(r, 7)?,
        applied_seq: seq_of(r.get(8)?)?,
        wipe: r
            .get::<_, Option<String>>(9)?
            .map(|w| WipeOrder::parse(&w).ok_or_else(|| corrupt_col("unknown wipe order")))
            .transpose()?,
        wipe_sent_at: opt_time(r.get(10)?)?,
        app_version: r.get(11)?,
        unsent: r.get::<_, Option<i64>>(12)?.map(seq_of).transpose()?,
    })
}

const ERASURE_REQUEST_COLUMNS: &str = "id, organisation_id, team_id, record_id, record_kind, \
     reason, requested_by, requested_at, decision, decided_by, decided_at, executed_at, \
     tombstone_seq, also_erased, removed_from FROM erasure_requests";

const TRANSFER_COLUMNS: &str = "id, youth_id, from_team, to_team, requested_by, requested_at, \
     state, decided_by, decided_at FROM transfers";

fn transfer_row(r: &Row<'_>) -> rusqlite::Result<Transfer> {
    let state: String = r.get(6)?;
    Ok(Transfer {
        id: uuid_at(r, 0)?,
        youth_id: uuid_at(r, 1)?,
        from_team: uuid_at(r, 2)?,
        to_team: uuid_at(r, 3)?,
        requested_by: uuid_at(r, 4)?,
        requested_at: time(r.get(5)?)?,
        state: TransferState::parse(&state).ok_or_else(|| corrupt_col("unknown transfer state"))?,
        decided_by: opt_uuid_at(r, 7)?,
        decided_at: opt_time(r.get(8)?)?,
    })
}

const GRANT_COLUMNS: &str = "id, youth_id, team_id, user_id, device_id, member_id, reason, \
     granted_at, expires_at, ended_at, ended_by FROM access_grants";

fn grant_row(r: &Row<'_>) -> rusqlite::Result<AccessGrant> {
    let grantee = match (opt_uuid_at(r, 3)?, opt_uuid_at(r, 4)?) {
        (Some(user), None) => Grantee::User(user),
        (None, Some(device_id)) => Grantee::Device {
            device_id,
            member_id: opt_uuid_at(r, 5)?.unwrap_or_default(),
        },
        _ => return Err(corrupt_col("a grant names one user or one tablet")),
    };
    Ok(AccessGrant {
        id: uuid_at(r, 0)?,
        youth_id: uuid_at(r, 1)?,
        team_id: uuid_at(r, 2)?,
        grantee,
        reason: r.get(6)?,
        granted_at: time(r.get(7)?)?,
        expires_at: time(r.get(8)?)?,
        ended_at: opt_time(r.get(9)?)?,
        ended_by: opt_uuid_at(r, 10)?,
    })
}

fn erasure_request_row(r: &Row<'_>) -> rusqlite::Result<ErasureRequest> {
    let kind: String = r.get(4)?;
    let decision: Option<String> = r.get(8)?;
    let decision = match (
        decision.as_deref(),
        opt_uuid_at(r, 9)?,
        opt_time(r.get(10)?)?,
    ) {
        (Some(d), Some(by), Some(at)) => Some(ErasureDecision {
            approved: d == "approved",
            by,
            at,
        }),
        _ => None,
    };
    let executed = match (opt_time(r.get(11)?)?, r.get::<_, Option<i64>>(12)?) {
        (Some(at), Some(seq)) => Some(ErasureExecuted {
            at,
            tombstone_seq: seq_of(seq)?,
            also_erased: r.get(13)?,
            removed_from: r.get(14)?,
        }),
        _ => None,
    };
    Ok(ErasureRequest {
        id: uuid_at(r, 0)?,
        organisation_id: uuid_at(r, 1)?,
        team_id: uuid_at(r, 2)?,
        record_id: uuid_at(r, 3)?,
        record_kind: RecordKind::parse(&kind).ok_or_else(|| corrupt_col("unknown record kind"))?,
        reason: r.get(5)?,
        requested_by: uuid_at(r, 6)?,
        requested_at: time(r.get(7)?)?,
        decision,
        executed,
    })
}

const DOCUMENT_COLUMNS: &str =
    "id, kind, team_id, doc, heads, seq, received_at, fields, generation FROM documents";

fn document_row(r: &Row<'_>) -> rusqlite::Result<StoredDocument> {
    let kind: String = r.get(1)?;
    let heads: Vec<u8> = r.get(4)?;
    Ok(StoredDocument {
        id: uuid_at(r, 0)?,
        kind: RecordKind::parse(&kind).ok_or_else(|| corrupt_col("unknown record kind"))?,
        team_id: uuid_at(r, 2)?,
        doc: r.get(3)?,
        heads: heads_from_blob(&heads)?,
        seq: seq_of(r.get(5)?)?,
        received_at: time(r.get(6)?)?,
        fields: r.get(7)?,
        generation: r.get(8)?,
    })
}

fn tombstone_row(r: &Row<'_>) -> rusqlite::Result<Tombstone> {
    Ok(Tombstone {
        id: uuid_at(r, 0)?,
        team_id: uuid_at(r, 1)?,
        seq: seq_of(r.get(2)?)?,
        erased_at: time(r.get(3)?)?,
    })
}

fn day_of(s: Option<String>) -> rusqlite::Result<Option<NaiveDate>> {
    s.map(|d| d.parse().map_err(|_| corrupt_col("malformed date")))
        .transpose()
}

const CREDENTIAL_COLUMNS: &str =
    "id, organisation_id, name, role, created_at, login, password_hash FROM users";

fn credentials_row(r: &Row<'_>) -> rusqlite::Result<Credentials> {
    Ok(Credentials {
        user: user_row(r)?,
        login: r.get(5)?,
        password_hash: r.get(6)?,
    })
}

fn session_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        token_hash: hash_at(r, 0)?,
        user_id: uuid_at(r, 1)?,
        csrf_token: r.get(2)?,
        created_at: time(r.get(3)?)?,
        last_seen_at: time(r.get(4)?)?,
        expires_at: time(r.get(5)?)?,
    })
}

fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: seq_of(r.get(0)?)?,
        at: time(r.get(1)?)?,
        organisation_id: opt_uuid_at(r, 2)?,
        user_id: opt_uuid_at(r, 3)?,
        action: r.get(4)?,
        target_id: opt_uuid_at(r, 5)?,
        detail: r.get(6)?,
    })
}

const MEMBER_COLUMNS: &str = "id, team_id, display_name, active, changed_at, seq FROM team_members";

fn member_row(r: &Row<'_>) -> rusqlite::Result<TeamMember> {
    Ok(TeamMember {
        id: uuid_at(r, 0)?,
        team_id: uuid_at(r, 1)?,
        display_name: r.get(2)?,
        active: r.get(3)?,
        changed_at: time(r.get(4)?)?,
        seq: seq_of(r.get(5)?)?,
    })
}

fn counter(tx: &Transaction<'_>, name: &str) -> StorageResult<u64> {
    let value: i64 = tx
        .prepare_cached("SELECT value FROM counters WHERE name = ?1")?
        .query_row([name], |r| r.get(0))?;
    Ok(seq_of(value)?)
}

/// Takes the next position of a counter (inside the write transaction).
fn next_counter(tx: &Transaction<'_>, name: &str) -> StorageResult<u64> {
    let value: i64 = tx
        .prepare_cached("UPDATE counters SET value = value + 1 WHERE name = ?1 RETURNING value")?
        .query_row([name], |r| r.get(0))?;
    Ok(seq_of(value)?)
}

fn review_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<VisitReview>> {
    let contact: Option<Vec<u8>> = r.get(at)?;
    if contact.is_none() {
        return Ok(None);
    }
    let state: String = r.get(at + 1)?;
    Ok(Some(VisitReview {
        contact_id: uuid_at(r, at)?,
        state: VisitState::parse(&state).ok_or_else(|| corrupt_col("unknown review state"))?,
        reason: r.get(at + 2)?,
        user_id: uuid_at(r, at + 3)?,
        at: time(r.get(at + 4)?)?,
    }))
}

const VIEW_COLUMNS: &str = "v.id, v.kind, v.team_id, v.seq, v.received_at, v.fields";

fn view_row(r: &Row<'_>) -> rusqlite::Result<ViewRecord> {
    let kind: String = r.get(1)?;
    Ok(ViewRecord {
        id: uuid_at(r, 0)?,
        kind: RecordKind::parse(&kind).ok_or_else(|| corrupt_col("unknown record kind"))?,
        team_id: uuid_at(r, 2)?,
        seq: seq_of(r.get(3)?)?,
        received_at: time(r.get(4)?)?,
        fields: r.get(5)?,
    })
}

/// `?, ?, ?` for an IN list of `n` values (at least one, so the SQL stays valid).
fn placeholders(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

fn blob(id: &Uuid) -> SqlValue {
    SqlValue::Blob(id.as_bytes().to_vec())
}

/// The ids for an IN list; an empty list becomes one impossible id (matches nothing).
fn id_values(ids: &[Uuid]) -> Vec<SqlValue> {
    if ids.is_empty() {
        vec![SqlValue::Blob(Vec::new())]
    } else {
        ids.iter().map(blob).collect()
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqliteTx<'_> {
    fn exists(&self, sql: &str, id: &Uuid) -> StorageResult<bool> {
        Ok(self
            .tx
            .prepare_cached(sql)?
            .query_row([b(id)], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn next_seq(
        &mut self,
        doc_id: Uuid,
        op: &str,
        device_id: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> StorageResult<u64> {
        self.tx
            .prepare_cached(
                "INSERT INTO change_log (doc_id, op, device_id, received_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![b(&doc_id), op, device_id.as_ref().map(b), ms(at)])?;
        Ok(seq_of(self.tx.last_insert_rowid())?)
    }
}

impl ReadTx for SqliteTx<'_> {
    fn organisations(&mut self) -> StorageResult<Vec<Organisation>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, name, created_at FROM organisations ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([], org_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn organisation(&mut self, id: Uuid) -> StorageResult<Option<Organisation>> {
        Ok(self
            .tx
            .prepare_cached("SELECT id, name, created_at FROM organisations WHERE id = ?1")?
            .query_row([b(&id)], org_row)
            .optional()?)
    }

    fn teams(&mut self) -> StorageResult<Vec<Team>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, organisation_id, name, created_at FROM teams ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([], team_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn team(&mut self, id: Uuid) -> StorageResult<Option<Team>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT id, organisation_id, name, created_at FROM teams WHERE id = ?1",
            )?
            .query_row([b(&id)], team_row)
            .optional()?)
    }

    fn team_counts(&mut self, team_id: Uuid) -> StorageResult<TeamCounts> {
        let count = |tx: &Transaction<'_>, sql: &str| -> StorageResult<u64> {
            let n: i64 = tx
                .prepare_cached(sql)?
                .query_row([b(&team_id)], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        };
        Ok(TeamCounts {
            documents: count(
                &self.tx,
                "SELECT count(*) FROM documents WHERE team_id = ?1",
            )?,
            tombstones: count(
                &self.tx,
                "SELECT count(*) FROM tombstones WHERE team_id = ?1",
            )?,
            active_devices: count(
                &self.tx,
                "SELECT count(*) FROM devices WHERE team_id = ?1 AND revoked_at IS NULL",
            )?,
        })
    }

    fn users(&mut self) -> StorageResult<Vec<User>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, organisation_id, name, role, created_at FROM users ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([], user_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn enrolment_code(&mut self, code_hash: &SecretHash) -> StorageResult<Option<EnrolmentCode>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT code_hash, team_id, created_at, expires_at, used_at, device_id
                   FROM enrolment_codes WHERE code_hash = ?1",
            )?
            .query_row([code_hash.as_slice()], |r| {
                Ok(EnrolmentCode {
                    code_hash: hash_at(r, 0)?,
                    team_id: uuid_at(r, 1)?,
                    created_at: time(r.get(2)?)?,
                    expires_at: time(r.get(3)?)?,
                    used_at: opt_time(r.get(4)?)?,
                    device_id: opt_uuid_at(r, 5)?,
                })
            })
            .optional()?)
    }

    fn device(&mut self, id: Uuid) -> StorageResult<Option<Device>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {DEVICE_COLUMNS} WHERE d.id = ?1"))?
            .query_row([b(&id)], device_row)
            .optional()?)
    }

    fn device_by_token(&mut self, token_hash: &SecretHash) -> StorageResult<Option<Device>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {DEVICE_COLUMNS} WHERE d.token_hash = ?1"))?
            .query_row([token_hash.as_slice()], device_row)
            .optional()?)
    }

    fn devices_of_writer(&mut self, writer: Uuid) -> StorageResult<Vec<(Device, SecretHash)>> {
        // The device's columns, then its token hash.
        let columns = DEVICE_COLUMNS.replacen(" FROM devices", ", d.token_hash FROM devices", 1);
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {columns} WHERE d.writer = ?1 ORDER BY d.enrolled_at"
        ))?;
        let rows = stmt.query_map([b(&writer)], |r| {
            let hash: Vec<u8> = r.get(DEVICE_COLUMN_COUNT)?;
            let hash = SecretHash::try_from(hash.as_slice())
                .map_err(|_| corrupt_col("token hash is not 32 bytes"))?;
            Ok((device_row(r)?, hash))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn devices(&mut self, team_id: Option<Uuid>) -> StorageResult<Vec<Device>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} WHERE ?1 IS NULL OR d.team_id = ?1 ORDER BY d.enrolled_at, d.id"
        ))?;
        let rows = stmt.query_map([team_id.as_ref().map(b)], device_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn erasure_request(&mut self, id: Uuid) -> StorageResult<Option<ErasureRequest>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {ERASURE_REQUEST_COLUMNS} WHERE id = ?1"))?
            .query_row([b(&id)], erasure_request_row)
            .optional()?)
    }

    fn erasure_requests(&mut self, organisation_id: Uuid) -> StorageResult<Vec<ErasureRequest>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {ERASURE_REQUEST_COLUMNS} WHERE organisation_id = ?1
              ORDER BY requested_at DESC, id DESC"
        ))?;
        let rows = stmt.query_map([b(&organisation_id)], erasure_request_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn document(&mut self, id: Uuid) -> StorageResult<Option<StoredDocument>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {DOCUMENT_COLUMNS} WHERE id = ?1"))?
            .query_row([b(&id)], document_row)
            .optional()?)
    }

    fn tombstone(&mut self, id: Uuid) -> StorageResult<Option<Tombstone>> {
        Ok(self
            .tx
            .prepare_cached("SELECT id, team_id, seq, erased_at FROM tombstones WHERE id = ?1")?
            .query_row([b(&id)], tombstone_row)
            .optional()?)
    }

    fn records_of_youth(&mut self, youth_id: Uuid) -> StorageResult<Vec<StoredDocument>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {DOCUMENT_COLUMNS}
              WHERE (kind IN ('action', 'outcome') AND json_extract(fields, '$.youth_id') = ?1)
                 OR (kind = 'contact' AND EXISTS (
                       SELECT 1 FROM json_each(fields, '$.youth_ids') WHERE value = ?1))
              ORDER BY seq"
        ))?;
        let rows = stmt.query_map([youth_id.to_string()], document_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn review_tasks_of(&mut self, contact_id: Uuid) -> StorageResult<Vec<Uuid>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id FROM documents
              WHERE kind = 'review_task' AND json_extract(fields, '$.contact_id') = ?1",
        )?;
        let rows = stmt.query_map([contact_id.to_string()], |r| uuid_at(r, 0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn last_seq(&mut self) -> StorageResult<u64> {
        // sqlite_sequence keeps the highest position ever given, even if its row is gone.
        let seq: Option<i64> = self
            .tx
            .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'change_log'")?
            .query_row([], |r| r.get(0))
            .optional()?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }

    fn documents_after(
        &mut self,
        team_id: Uuid,
        after: u64,
        limit: usize,
    ) -> StorageResult<Vec<StoredDocument>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {DOCUMENT_COLUMNS} WHERE team_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![
                b(&team_id),
                to_i64(after),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            document_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn tombstones_after(
        &mut self,
        team_id: Uuid,
        after: u64,
        up_to: Option<u64>,
        limit: usize,
    ) -> StorageResult<Vec<Tombstone>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, team_id, seq, erased_at FROM tombstones
              WHERE team_id = ?1 AND seq > ?2 AND (?3 IS NULL OR seq <= ?3)
              ORDER BY seq LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![
                b(&team_id),
                to_i64(after),
                up_to.map(to_i64),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            tombstone_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn departures_after(
        &mut self,
        team_id: Uuid,
        after: u64,
        up_to: Option<u64>,
        limit: usize,
    ) -> StorageResult<Vec<Departure>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, team_id, seq FROM departures
              WHERE team_id = ?1 AND seq > ?2 AND (?3 IS NULL OR seq <= ?3)
              ORDER BY seq LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![
                b(&team_id),
                to_i64(after),
                up_to.map(to_i64),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| {
                Ok(Departure {
                    id: uuid_at(r, 0)?,
                    team_id: uuid_at(r, 1)?,
                    seq: seq_of(r.get(2)?)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn departed(&mut self, id: Uuid, team_id: Uuid) -> StorageResult<bool> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM departures WHERE id = ?1 AND team_id = ?2")?
            .query_row(params![b(&id), b(&team_id)], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn transfer(&mut self, id: Uuid) -> StorageResult<Option<Transfer>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {TRANSFER_COLUMNS} WHERE id = ?1"))?
            .query_row([b(&id)], transfer_row)
            .optional()?)
    }

    fn transfers_of(&mut self, teams: &[Uuid]) -> StorageResult<Vec<Transfer>> {
        let sql = format!(
            "SELECT {TRANSFER_COLUMNS} WHERE from_team IN ({0}) OR to_team IN ({0})
              ORDER BY requested_at DESC, id DESC",
            placeholders(teams.len())
        );
        let mut stmt = self.tx.prepare(&sql)?;
        let mut values = id_values(teams);
        values.extend(id_values(teams));
        let rows = stmt.query_map(params_from_iter(values), transfer_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn access_grant(&mut self, id: Uuid) -> StorageResult<Option<AccessGrant>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {GRANT_COLUMNS} WHERE id = ?1"))?
            .query_row([b(&id)], grant_row)
            .optional()?)
    }

    fn access_grants_on(
        &mut self,
        teams: &[Uuid],
        limit: usize,
    ) -> StorageResult<Vec<AccessGrant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} WHERE team_id IN ({})
              ORDER BY granted_at DESC, id DESC LIMIT {limit}",
            placeholders(teams.len())
        );
        let mut stmt = self.tx.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(id_values(teams)), grant_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn access_grants_to(
        &mut self,
        grantee: Grantee,
        limit: usize,
    ) -> StorageResult<Vec<AccessGrant>> {
        let (column, id) = match grantee {
            Grantee::User(id) => ("user_id", id),
            Grantee::Device { device_id, .. } => ("device_id", device_id),
        };
        let sql = format!(
            "SELECT {GRANT_COLUMNS} WHERE {column} = ?1
              ORDER BY granted_at DESC, id DESC LIMIT {limit}"
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([b(&id)], grant_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn credentials(&mut self, user_id: Uuid) -> StorageResult<Option<Credentials>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {CREDENTIAL_COLUMNS} WHERE id = ?1"))?
            .query_row([b(&user_id)], credentials_row)
            .optional()?)
    }

    fn credentials_by_login(&mut self, login: &str) -> StorageResult<Option<Credentials>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {CREDENTIAL_COLUMNS} WHERE login = ?1"))?
            .query_row([login], credentials_row)
            .optional()?)
    }

    fn session(&mut self, token_hash: &SecretHash) -> StorageResult<Option<Session>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at
                   FROM sessions WHERE token_hash = ?1",
            )?
            .query_row([token_hash.as_slice()], session_row)
            .optional()?)
    }

    fn user_sessions(&mut self, user_id: Uuid) -> StorageResult<Vec<Session>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at
               FROM sessions WHERE user_id = ?1 ORDER BY created_at DESC, token_hash",
        )?;
        let rows = stmt.query_map([b(&user_id)], session_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn audit_entries(
        &mut self,
        organisation_id: Uuid,
        target: Option<Uuid>,
        offset: usize,
        limit: usize,
    ) -> StorageResult<(Vec<AuditEntry>, u64)> {
        let target = target.as_ref().map(b);
        let total: i64 = self
            .tx
            .prepare_cached(
                "SELECT count(*) FROM audit_log
                  WHERE organisation_id = ?1 AND (?2 IS NULL OR target_id = ?2)",
            )?
            .query_row(params![b(&organisation_id), target], |r| r.get(0))?;
        let mut stmt = self.tx.prepare_cached(
            "SELECT id, at, organisation_id, user_id, action, target_id, detail FROM audit_log
              WHERE organisation_id = ?1 AND (?2 IS NULL OR target_id = ?2)
              ORDER BY id DESC LIMIT ?3 OFFSET ?4",
        )?;
        let rows = stmt.query_map(
            params![
                b(&organisation_id),
                target,
                i64::try_from(limit).unwrap_or(i64::MAX),
                i64::try_from(offset).unwrap_or(i64::MAX)
            ],
            audit_row,
        )?;
        Ok((rows.collect::<rusqlite::Result<_>>()?, total.max(0) as u64))
    }

    fn targets(&mut self, organisation_id: Uuid) -> StorageResult<Option<Targets>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT identified, mobilised, from_day, to_day FROM targets
                  WHERE organisation_id = ?1",
            )?
            .query_row([b(&organisation_id)], |r| {
                let count = |v: Option<i64>| v.map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX));
                Ok(Targets {
                    identified: count(r.get(0)?),
                    mobilised: count(r.get(1)?),
                    from: day_of(r.get(2)?)?.ok_or_else(|| corrupt_col("missing date"))?,
                    to: day_of(r.get(3)?)?.ok_or_else(|| corrupt_col("missing date"))?,
                })
            })
            .optional()?)
    }

    fn retention_months(&mut self, organisation_id: Uuid) -> StorageResult<Option<u32>> {
        Ok(self
            .tx
            .prepare_cached("SELECT months FROM retention_rules WHERE organisation_id = ?1")?
            .query_row([b(&organisation_id)], |r| r.get(0))
            .optional()?)
    }

    fn record_fields(&mut self, kinds: &[RecordKind]) -> StorageResult<Vec<RecordFields>> {
        let mut out = Vec::new();
        let mut stmt = self
            .tx
            .prepare_cached("SELECT id, team_id, fields FROM documents WHERE kind = ?1")?;
        for kind in kinds {
            let rows = stmt.query_map([kind.as_str()], |r| {
                Ok(RecordFields {
                    id: uuid_at(r, 0)?,
                    kind: *kind,
                    team_id: uuid_at(r, 1)?,
                    fields: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                })
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    fn server_secret(&mut self, name: &str) -> StorageResult<Option<Vec<u8>>> {
        Ok(self
            .tx
            .prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?)
    }

    fn change_log(&mut self, doc_id: Uuid) -> StorageResult<Vec<LogEntry>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT seq, op, device_id, received_at FROM change_log WHERE doc_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([b(&doc_id)], |r| {
            Ok(LogEntry {
                seq: seq_of(r.get(0)?)?,
                op: r.get(1)?,
                device_id: opt_uuid_at(r, 2)?,
                received_at: time(r.get(3)?)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn documents_since(&mut self, after: u64, limit: usize) -> StorageResult<Vec<StoredDocument>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {DOCUMENT_COLUMNS} WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![to_i64(after), i64::try_from(limit).unwrap_or(i64::MAX)],
            document_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn view_seq(&mut self) -> StorageResult<u64> {
        let seq: i64 = self
            .tx
            .prepare_cached("SELECT seq FROM view_state WHERE id = 1")?
            .query_row([], |r| r.get(0))?;
        Ok(seq.max(0) as u64)
    }

    fn view_record(&mut self, id: Uuid) -> StorageResult<Option<ViewRecord>> {
        Ok(self
            .tx
            .prepare_cached(&format!(
                "SELECT {VIEW_COLUMNS} FROM record_view v WHERE v.id = ?1"
            ))?
            .query_row([b(&id)], view_row)
            .optional()?)
    }

    fn view_records(
        &mut self,
        kinds: &[RecordKind],
        teams: &[Uuid],
    ) -> StorageResult<Vec<ViewRecord>> {
        let sql = format!(
            "SELECT {VIEW_COLUMNS} FROM record_view v
              WHERE v.kind IN ({}) AND v.team_id IN ({}) ORDER BY v.seq",
            placeholders(kinds.len()),
            placeholders(teams.len())
        );
        let mut values: Vec<SqlValue> = if kinds.is_empty() {
            vec![SqlValue::Null]
        } else {
            kinds
                .iter()
                .map(|k| SqlValue::Text(k.as_str().to_string()))
                .collect()
        };
        values.extend(id_values(teams));
        let mut stmt = self.tx.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), view_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn view_by_ref(&mut self, kind: RecordKind, ref_id: Uuid) -> StorageResult<Vec<ViewRecord>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {VIEW_COLUMNS} FROM record_view v WHERE v.ref_id = ?1 AND v.kind = ?2 ORDER BY v.seq"
        ))?;
        let rows = stmt.query_map(params![b(&ref_id), kind.as_str()], view_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn view_contacts_of_youth(&mut self, youth_id: Uuid) -> StorageResult<Vec<ViewRecord>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {VIEW_COLUMNS} FROM record_view_youth l
               JOIN record_view v ON v.id = l.contact_id
              WHERE l.youth_id = ?1 ORDER BY v.at_ms DESC, v.id DESC"
        ))?;
        let rows = stmt.query_map([b(&youth_id)], view_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn visits(&mut self, filter: &VisitFilter) -> StorageResult<(Vec<VisitRow>, u64)> {
        let mut conditions = vec![format!(
            "v.kind = 'contact' AND v.team_id IN ({})",
            placeholders(filter.teams.len())
        )];
        let mut values = id_values(&filter.teams);
        if let Some(from) = filter.from {
            conditions.push("v.day >= ?".into());
            values.push(SqlValue::Text(from.to_string()));
        }
        if let Some(to) = filter.to {
            conditions.push("v.day <= ?".into());
            values.push(SqlValue::Text(to.to_string()));
        }
        if let Some(communes) = &filter.communes {
            conditions.push(format!("v.commune IN ({})", placeholders(communes.len())));
            if communes.is_empty() {
                values.push(SqlValue::Null);
            } else {
                values.extend(communes.iter().map(|c| SqlValue::Text(c.clone())));
            }
        }
        match filter.state {
            None => {}
            Some(VisitState::ToReview) => conditions.push("r.contact_id IS NULL".into()),
            Some(state) => {
                conditions.push("r.state = ?".into());
                values.push(SqlValue::Text(state.as_str().to_string()));
            }
        }
        let from_where = format!(
            "FROM record_view v LEFT JOIN visit_reviews r ON r.contact_id = v.id WHERE {}",
            conditions.join(" AND ")
        );
        let total: i64 = self
            .tx
            .prepare(&format!("SELECT count(*) {from_where}"))?
            .query_row(params_from_iter(values.iter()), |r| r.get(0))?;
        let sql = format!(
            "SELECT {VIEW_COLUMNS}, r.contact_id, r.state, r.reason, r.user_id, r.at {from_where}
              ORDER BY v.at_ms DESC, v.id DESC LIMIT ? OFFSET ?"
        );
        values.push(SqlValue::Integer(
            i64::try_from(filter.limit).unwrap_or(i64::MAX),
        ));
        values.push(SqlValue::Integer(
            i64::try_from(filter.offset).unwrap_or(i64::MAX),
        ));
        let mut stmt = self.tx.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), |r| {
            Ok((view_row(r)?, review_row(r, 6)?))
        })?;
        Ok((rows.collect::<rusqlite::Result<_>>()?, total.max(0) as u64))
    }

    fn visit_review(&mut self, contact_id: Uuid) -> StorageResult<Option<VisitReview>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT contact_id, state, reason, user_id, at FROM visit_reviews
                  WHERE contact_id = ?1",
            )?
            .query_row([b(&contact_id)], |r| review_row(r, 0))
            .optional()?
            .flatten())
    }

    fn decisions_after(
        &mut self,
        team_id: Uuid,
        after: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, VisitReview)>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT r.contact_id, r.state, r.reason, r.user_id, r.at, r.seq
               FROM visit_reviews r JOIN documents d ON d.id = r.contact_id
              WHERE d.team_id = ?1 AND r.seq > ?2 ORDER BY r.seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![b(&team_id), to_i64(after), to_i64(limit as u64)],
            |r| Ok((seq_of(r.get(5)?)?, review_row(r, 0)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            if let (seq, Some(review)) = row? {
                out.push((seq, review));
            }
        }
        Ok(out)
    }

    fn last_decision_seq(&mut self) -> StorageResult<u64> {
        counter(&self.tx, "decisions")
    }

    fn team_members(&mut self, team_id: Uuid) -> StorageResult<Vec<TeamMember>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {MEMBER_COLUMNS} WHERE team_id = ?1 ORDER BY display_name, id"
        ))?;
        let rows = stmt.query_map([b(&team_id)], member_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn team_member(&mut self, id: Uuid) -> StorageResult<Option<TeamMember>> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {MEMBER_COLUMNS} WHERE id = ?1"))?
            .query_row([b(&id)], member_row)
            .optional()?)
    }

    fn login_attempt_counts(
        &mut self,
        account_key: &SecretHash,
        address_key: &SecretHash,
        since: DateTime<Utc>,
    ) -> StorageResult<(u64, u64)> {
        let (account, address): (i64, i64) = self
            .tx
            .prepare_cached(
                "SELECT (SELECT count(*) FROM login_attempts WHERE account_key = ?1 AND at >= ?3),
                        (SELECT count(*) FROM login_attempts WHERE address_key = ?2 AND at >= ?3)",
            )?
            .query_row(
                params![account_key.as_slice(), address_key.as_slice(), ms(since)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
        Ok((account.max(0) as u64, address.max(0) as u64))
    }

    fn user_disabled_at(&mut self, user_id: Uuid) -> StorageResult<Option<DateTime<Utc>>> {
        let at: Option<Option<i64>> = self
            .tx
            .prepare_cached("SELECT disabled_at FROM users WHERE id = ?1")?
            .query_row([b(&user_id)], |r| r.get(0))
            .optional()?;
        Ok(opt_time(at.flatten())?)
    }

    fn session_second_factor(&mut self, token_hash: &SecretHash) -> StorageResult<bool> {
        let at: Option<Option<i64>> = self
            .tx
            .prepare_cached("SELECT second_factor_at FROM sessions WHERE token_hash = ?1")?
            .query_row([token_hash.as_slice()], |r| r.get(0))
            .optional()?;
        Ok(at.flatten().is_some())
    }

    fn login_challenge(
        &mut self,
        token_hash: &SecretHash,
    ) -> StorageResult<Option<LoginChallenge>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT token_hash, user_id, created_at, expires_at FROM login_challenges
                  WHERE token_hash = ?1",
            )?
            .query_row([token_hash.as_slice()], |r| {
                Ok(LoginChallenge {
                    token_hash: hash_at(r, 0)?,
                    user_id: uuid_at(r, 1)?,
                    created_at: time(r.get(2)?)?,
                    expires_at: time(r.get(3)?)?,
                })
            })
            .optional()?)
    }

    fn user_totp(&mut self, user_id: Uuid) -> StorageResult<Option<UserTotp>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT secret, created_at, confirmed_at, last_step FROM user_totp
                  WHERE user_id = ?1",
            )?
            .query_row([b(&user_id)], |r| {
                Ok(UserTotp {
                    secret: r.get(0)?,
                    created_at: time(r.get(1)?)?,
                    confirmed_at: opt_time(r.get(2)?)?,
                    last_step: seq_of(r.get(3)?)?,
                })
            })
            .optional()?)
    }

    fn unused_recovery_codes(&mut self, user_id: Uuid) -> StorageResult<u64> {
        let n: i64 = self
            .tx
            .prepare_cached(
                "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
            )?
            .query_row([b(&user_id)], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }
}

impl Tx for SqliteTx<'_> {
    fn insert_organisation(&mut self, org: &Organisation) -> StorageResult<()> {
        if self.exists("SELECT 1 FROM organisations WHERE id = ?1", &org.id)? {
            return Err(StorageError::Duplicate {
                what: "organisation",
                id: org.id,
            });
        }
        self.tx
            .prepare_cached("INSERT INTO organisations (id, name, created_at) VALUES (?1, ?2, ?3)")?
            .execute(params![b(&org.id), org.name, ms(org.created_at)])?;
        Ok(())
    }

    fn rename_organisation(&mut self, id: Uuid, name: &str) -> StorageResult<()> {
        let n = self
            .tx
            .prepare_cached("UPDATE organisations SET name = ?2 WHERE id = ?1")?
            .execute(params![b(&id), name])?;
        if n == 0 {
            return Err(StorageError::NotFound {
                what: "organisation",
                id,
            });
        }
        Ok(())
    }

    fn insert_team(&mut self, team: &Team) -> StorageResult<()> {
        if !self.exists(
            "SELECT 1 FROM organisations WHERE id = ?1",
            &team.organisation_id,
        )? {
            return Err(StorageError::NotFound {
                what: "organisation",
                id: team.organisation_id,
            });
        }
        if self.exists("SELECT 1 FROM teams WHERE id = ?1", &team.id)? {
            return Err(StorageError::Duplicate {
                what: "team",
                id: team.id,
            });
        }
        self.tx
            .prepare_cached(
                "INSERT INTO teams (id, organisation_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                b(&team.id),
                b(&team.organisation_id),
                team.name,
                ms(team.created_at)
            ])?;
        Ok(())
    }

    fn insert_user(&mut self, user: &User) -> StorageResult<()> {
        if !self.exists(
            "SELECT 1 FROM organisations WHERE id = ?1",
            &user.organisation_id,
        )? {
            return Err(StorageError::NotFound {
                what: "organisation",
                id: user.organisation_id,
            });
        }
        if self.exists("SELECT 1 FROM users WHERE id = ?1", &user.id)? {
            return Err(StorageError::Duplicate {
                what: "user",
                id: user.id,
            });
        }
        self.tx
            .prepare_cached(
                "INSERT INTO users (id, organisation_id, name, role, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                b(&user.id),
                b(&user.organisation_id),
                user.name,
                user.role.as_str(),
                ms(user.created_at)
            ])?;
        Ok(())
    }

    fn insert_enrolment_code(&mut self, code: &EnrolmentCode) -> StorageResult<()> {
        if !self.exists("SELECT 1 FROM teams WHERE id = ?1", &code.team_id)? {
            return Err(StorageError::NotFound {
                what: "team",
                id: code.team_id,
            });
        }
        self.tx
            .prepare_cached(
                "INSERT INTO enrolment_codes (code_hash, team_id, created_at, expires_at, used_at, device_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                code.code_hash.as_slice(),
                b(&code.team_id),
                ms(code.created_at),
                ms(code.expires_at),
                code.used_at.map(ms),
                code.device_id.as_ref().map(b),
            ])?;
        Ok(())
    }

    fn use_enrolment_code(
        &mut self,
        code_hash: &SecretHash,
        device_id: Uuid,
        at: DateTime<Utc>,
    ) -> StorageResult<bool> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE enrolment_codes SET used_at = ?2, device_id = ?3
                  WHERE code_hash = ?1 AND used_at IS NULL",
            )?
            .execute(params![code_hash.as_slice(), ms(at), b(&device_id)])?;
        Ok(n == 1)
    }

    fn insert_device(&mut self, device: &Device, token_hash: &SecretHash) -> StorageResult<()> {
        if !self.exists("SELECT 1 FROM teams WHERE id = ?1", &device.team_id)? {
            return Err(StorageError::NotFound {
                what: "team",
                id: device.team_id,
            });
        }
        self.tx
            .prepare_cached(
                "INSERT INTO devices (id, team_id, label, token_hash, enrolled_at, writer)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                b(&device.id),
                b(&device.team_id),
                device.label,
                token_hash.as_slice(),
                ms(device.enrolled_at),
                device.writer.as_ref().map(b)
            ])?;
        Ok(())
    }

    fn revoke_device(&mut self, id: Uuid, at: DateTime<Utc>) -> StorageResult<bool> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
            )?
            .execute(params![b(&id), ms(at)])?;
        Ok(n == 1)
    }

    fn order_wipe(&mut self, id: Uuid, order: WipeOrder) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "UPDATE devices SET wipe = CASE WHEN wipe = 'urgent' THEN wipe ELSE ?2 END
                  WHERE id = ?1",
            )?
            .execute(params![b(&id), order.as_str()])?;
        Ok(())
    }

    fn wipe_sent(&mut self, id: Uuid, at: DateTime<Utc>) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "UPDATE devices SET wipe_sent_at = coalesce(wipe_sent_at, ?2) WHERE id = ?1",
            )?
            .execute(params![b(&id), ms(at)])?;
        Ok(())
    }

    fn touch_device(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        applied_seq: u64,
        app_version: Option<&str>,
        unsent: Option<u32>,
    ) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "UPDATE devices SET last_sync_at = ?2, applied_seq = ?3, app_version = ?4,
                    unsent = ?5
                  WHERE id = ?1",
            )?
            .execute(params![
                b(&id),
                ms(at),
                to_i64(applied_seq),
                app_version,
                unsent
            ])?;
        Ok(())
    }

    fn insert_erasure_request(&mut self, q: &ErasureRequest) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO erasure_requests (id, organisation_id, team_id, record_id, record_kind,
                    reason, requested_by, requested_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                b(&q.id),
                b(&q.organisation_id),
                b(&q.team_id),
                b(&q.record_id),
                q.record_kind.as_str(),
                q.reason,
                b(&q.requested_by),
                ms(q.requested_at)
            ])?;
        Ok(())
    }

    fn decide_erasure_request(&mut self, id: Uuid, d: &ErasureDecision) -> StorageResult<()> {
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE erasure_requests SET decision = ?2, decided_by = ?3, decided_at = ?4
                  WHERE id = ?1 AND decision IS NULL",
            )?
            .execute(params![
                b(&id),
                if d.approved { "approved" } else { "refused" },
                b(&d.by),
                ms(d.at)
            ])?;
        if changed == 0 {
            return Err(StorageError::NotFound {
                what: "undecided erasure request",
                id,
            });
        }
        Ok(())
    }

    fn executed_erasure_request(&mut self, id: Uuid, e: &ErasureExecuted) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "UPDATE erasure_requests SET executed_at = ?2, tombstone_seq = ?3,
                    also_erased = ?4, removed_from = ?5 WHERE id = ?1",
            )?
            .execute(params![
                b(&id),
                ms(e.at),
                to_i64(e.tombstone_seq),
                e.also_erased,
                e.removed_from
            ])?;
        Ok(())
    }

    fn put_document(&mut self, doc: DocumentWrite<'_>) -> StorageResult<u64> {
        let seq = self.next_seq(doc.id, "change", doc.device_id, doc.received_at)?;
        self.tx
            .prepare_cached(
                "INSERT INTO documents
                    (id, kind, team_id, doc, heads, seq, received_at, fields, generation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (id) DO UPDATE SET
                    kind = excluded.kind, team_id = excluded.team_id, doc = excluded.doc,
                    heads = excluded.heads, seq = excluded.seq, received_at = excluded.received_at,
                    fields = excluded.fields, generation = excluded.generation",
            )?
            .execute(params![
                b(&doc.id),
                doc.kind.as_str(),
                b(&doc.team_id),
                doc.doc,
                heads_to_blob(doc.heads),
                to_i64(seq),
                ms(doc.received_at),
                doc.fields,
                doc.generation
            ])?;
        Ok(seq)
    }

    fn erase_document(&mut self, id: Uuid, at: DateTime<Utc>) -> StorageResult<Option<Tombstone>> {
        let team: Option<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT team_id FROM documents WHERE id = ?1")?
            .query_row([b(&id)], |r| r.get(0))
            .optional()?;
        let Some(team) = team else {
            return Ok(None);
        };
        let team_id = Uuid::from_slice(&team)
            .map_err(|_| StorageError::Corrupt("malformed team id".into()))?;
        self.tx
            .prepare_cached("DELETE FROM documents WHERE id = ?1")?
            .execute([b(&id)])?;
        self.delete_view(id)?;
        self.tx
            .prepare_cached("DELETE FROM visit_reviews WHERE contact_id = ?1")?
            .execute([b(&id)])?;
        // The reasons given to read an erased young person's file go with it.
        self.tx
            .prepare_cached("DELETE FROM access_grants WHERE youth_id = ?1")?
            .execute([b(&id)])?;
        self.bury(id, team_id, at).map(Some)
    }

    fn bury(&mut self, id: Uuid, team_id: Uuid, at: DateTime<Utc>) -> StorageResult<Tombstone> {
        let seq = self.next_seq(id, "erase", None, at)?;
        self.tx
            .prepare_cached(
                "INSERT INTO tombstones (id, team_id, seq, erased_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![b(&id), b(&team_id), to_i64(seq), ms(at)])?;
        Ok(Tombstone {
            id,
            team_id,
            seq,
            erased_at: at,
        })
    }

    fn set_user_role(&mut self, user_id: Uuid, role: Role) -> StorageResult<bool> {
        let n = self
            .tx
            .prepare_cached("UPDATE users SET role = ?2 WHERE id = ?1")?
            .execute(params![b(&user_id), role.as_str()])?;
        Ok(n == 1)
    }

    fn put_departure(&mut self, id: Uuid, team_id: Uuid, at: DateTime<Utc>) -> StorageResult<u64> {
        let seq = self.next_seq(id, "leave", None, at)?;
        self.tx
            .prepare_cached(
                "INSERT INTO departures (id, team_id, seq, left_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id, team_id) DO UPDATE SET seq = excluded.seq, left_at = excluded.left_at",
            )?
            .execute(params![b(&id), b(&team_id), to_i64(seq), ms(at)])?;
        Ok(seq)
    }

    fn delete_departure(&mut self, id: Uuid, team_id: Uuid) -> StorageResult<()> {
        self.tx
            .prepare_cached("DELETE FROM departures WHERE id = ?1 AND team_id = ?2")?
            .execute(params![b(&id), b(&team_id)])?;
        Ok(())
    }

    fn insert_transfer(&mut self, t: &Transfer) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO transfers (id, youth_id, from_team, to_team, requested_by,
                    requested_at, state, decided_by, decided_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                b(&t.id),
                b(&t.youth_id),
                b(&t.from_team),
                b(&t.to_team),
                b(&t.requested_by),
                ms(t.requested_at),
                t.state.as_str(),
                t.decided_by.as_ref().map(b),
                t.decided_at.map(ms)
            ])?;
        Ok(())
    }

    fn insert_access_grant(&mut self, g: &AccessGrant) -> StorageResult<()> {
        if self.access_grant(g.id)?.is_some() {
            return Err(StorageError::Duplicate {
                what: "access grant",
                id: g.id,
            });
        }
        let (user, device, member) = match g.grantee {
            Grantee::User(user) => (Some(user), None, None),
            Grantee::Device {
                device_id,
                member_id,
            } => (None, Some(device_id), Some(member_id)),
        };
        self.tx
            .prepare_cached(
                "INSERT INTO access_grants (id, youth_id, team_id, user_id, device_id,
                    member_id, reason, granted_at, expires_at, ended_at, ended_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                b(&g.id),
                b(&g.youth_id),
                b(&g.team_id),
                user.as_ref().map(b),
                device.as_ref().map(b),
                member.as_ref().map(b),
                g.reason,
                ms(g.granted_at),
                ms(g.expires_at),
                g.ended_at.map(ms),
                g.ended_by.as_ref().map(b)
            ])?;
        Ok(())
    }

    fn end_access_grant(&mut self, id: Uuid, by: Uuid, at: DateTime<Utc>) -> StorageResult<bool> {
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE access_grants SET ended_at = ?2, ended_by = ?3
                  WHERE id = ?1 AND ended_at IS NULL",
            )?
            .execute(params![b(&id), ms(at), b(&by)])?;
        Ok(changed == 1)
    }

    fn end_transfer(
        &mut self,
        id: Uuid,
        state: TransferState,
        by: Uuid,
        at: DateTime<Utc>,
    ) -> StorageResult<bool> {
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE transfers SET state = ?2, decided_by = ?3, decided_at = ?4
                  WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![b(&id), state.as_str(), b(&by), ms(at)])?;
        Ok(changed == 1)
    }

    fn set_login(&mut self, user_id: Uuid, login: Option<&str>) -> StorageResult<()> {
        if let Some(login) = login {
            let other: Option<Vec<u8>> = self
                .tx
                .prepare_cached("SELECT id FROM users WHERE login = ?1 AND id <> ?2")?
                .query_row(params![login, b(&user_id)], |r| r.get(0))
                .optional()?;
            if let Some(other) = other {
                return Err(StorageError::Duplicate {
                    what: "login of user",
                    id: Uuid::from_slice(&other).unwrap_or_default(),
                });
            }
        }
        let n = self
            .tx
            .prepare_cached("UPDATE users SET login = ?2 WHERE id = ?1")?
            .execute(params![b(&user_id), login])?;
        if n == 0 {
            return Err(StorageError::NotFound {
                what: "user",
                id: user_id,
            });
        }
        Ok(())
    }

    fn set_password_hash(
        &mut self,
        user_id: Uuid,
        hash: &str,
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE users SET password_hash = ?2, password_set_at = ?3 WHERE id = ?1",
            )?
            .execute(params![b(&user_id), hash, ms(at)])?;
        if n == 0 {
            return Err(StorageError::NotFound {
                what: "user",
                id: user_id,
            });
        }
        Ok(())
    }

    fn insert_session(&mut self, session: &Session) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                session.token_hash.as_slice(),
                b(&session.user_id),
                session.csrf_token,
                ms(session.created_at),
                ms(session.last_seen_at),
                ms(session.expires_at)
            ])?;
        Ok(())
    }

    fn touch_session(
        &mut self,
        token_hash: &SecretHash,
        last_seen_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "UPDATE sessions SET last_seen_at = ?2, expires_at = ?3 WHERE token_hash = ?1",
            )?
            .execute(params![
                token_hash.as_slice(),
                ms(last_seen_at),
                ms(expires_at)
            ])?;
        Ok(())
    }

    fn delete_session(&mut self, token_hash: &SecretHash) -> StorageResult<()> {
        self.tx
            .prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
            .execute([token_hash.as_slice()])?;
        Ok(())
    }

    fn delete_user_sessions(&mut self, user_id: Uuid) -> StorageResult<()> {
        self.tx
            .prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
            .execute([b(&user_id)])?;
        Ok(())
    }

    fn delete_expired_sessions(&mut self, now: DateTime<Utc>) -> StorageResult<u64> {
        let n = self
            .tx
            .prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
            .execute([ms(now)])?;
        Ok(n as u64)
    }

    fn insert_audit(&mut self, entry: &AuditEntry) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO audit_log (at, organisation_id, user_id, action, target_id, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                ms(entry.at),
                entry.organisation_id.as_ref().map(b),
                entry.user_id.as_ref().map(b),
                entry.action,
                entry.target_id.as_ref().map(b),
                entry.detail
            ])?;
        Ok(())
    }

    fn put_visit_review(&mut self, review: &VisitReview) -> StorageResult<()> {
        let seq = next_counter(&self.tx, "decisions")?;
        self.tx
            .prepare_cached(
                "INSERT INTO visit_reviews (contact_id, state, reason, user_id, at, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (contact_id) DO UPDATE SET
                    state = excluded.state, reason = excluded.reason,
                    user_id = excluded.user_id, at = excluded.at, seq = excluded.seq",
            )?
            .execute(params![
                b(&review.contact_id),
                review.state.as_str(),
                review.reason,
                b(&review.user_id),
                ms(review.at),
                to_i64(seq)
            ])?;
        Ok(())
    }

    fn put_team_member(&mut self, member: &TeamMember) -> StorageResult<u64> {
        let seq = next_counter(&self.tx, "roster")?;
        self.tx
            .prepare_cached(
                "INSERT INTO team_members (id, team_id, display_name, active, changed_at, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET
                    team_id = excluded.team_id, display_name = excluded.display_name,
                    active = excluded.active, changed_at = excluded.changed_at,
                    seq = excluded.seq",
            )?
            .execute(params![
                b(&member.id),
                b(&member.team_id),
                member.display_name,
                member.active,
                ms(member.changed_at),
                to_i64(seq)
            ])?;
        Ok(seq)
    }

    fn set_retention_months(
        &mut self,
        organisation_id: Uuid,
        months: u32,
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        if !self.exists(
            "SELECT 1 FROM organisations WHERE id = ?1",
            &organisation_id,
        )? {
            return Err(StorageError::NotFound {
                what: "organisation",
                id: organisation_id,
            });
        }
        self.tx
            .prepare_cached(
                "INSERT INTO retention_rules (organisation_id, months, updated_at)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (organisation_id) DO UPDATE SET
                    months = excluded.months, updated_at = excluded.updated_at",
            )?
            .execute(params![b(&organisation_id), months, ms(at)])?;
        Ok(())
    }

    fn set_targets(
        &mut self,
        organisation_id: Uuid,
        targets: &Targets,
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        if !self.exists(
            "SELECT 1 FROM organisations WHERE id = ?1",
            &organisation_id,
        )? {
            return Err(StorageError::NotFound {
                what: "organisation",
                id: organisation_id,
            });
        }
        self.tx
            .prepare_cached(
                "INSERT INTO targets (organisation_id, identified, mobilised, from_day, to_day, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (organisation_id) DO UPDATE SET
                    identified = excluded.identified, mobilised = excluded.mobilised,
                    from_day = excluded.from_day, to_day = excluded.to_day,
                    updated_at = excluded.updated_at",
            )?
            .execute(params![
                b(&organisation_id),
                targets.identified,
                targets.mobilised,
                targets.from.to_string(),
                targets.to.to_string(),
                ms(at)
            ])?;
        Ok(())
    }

    fn replace_server_secret(
        &mut self,
        name: &str,
        value: &[u8],
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO server_secrets (name, value, created_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![name, value, ms(at)])?;
        Ok(())
    }

    fn insert_server_secret(
        &mut self,
        name: &str,
        value: &[u8],
        at: DateTime<Utc>,
    ) -> StorageResult<Vec<u8>> {
        self.tx
            .prepare_cached(
                "INSERT INTO server_secrets (name, value, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO NOTHING",
            )?
            .execute(params![name, value, ms(at)])?;
        self.server_secret(name)?
            .ok_or_else(|| StorageError::Backend("server secret not stored".into()))
    }

    fn put_view(&mut self, row: &ViewWrite) -> StorageResult<()> {
        let r = &row.record;
        self.tx
            .prepare_cached(
                "INSERT INTO record_view (id, kind, team_id, seq, received_at, fields, day, at_ms, commune, ref_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (id) DO UPDATE SET
                    kind = excluded.kind, team_id = excluded.team_id, seq = excluded.seq,
                    received_at = excluded.received_at, fields = excluded.fields,
                    day = excluded.day, at_ms = excluded.at_ms, commune = excluded.commune,
                    ref_id = excluded.ref_id",
            )?
            .execute(params![
                b(&r.id),
                r.kind.as_str(),
                b(&r.team_id),
                to_i64(r.seq),
                ms(r.received_at),
                r.fields,
                row.day.map(|d| d.to_string()),
                row.at_ms,
                row.commune,
                row.ref_id.as_ref().map(b)
            ])?;
        self.tx
            .prepare_cached("DELETE FROM record_view_youth WHERE contact_id = ?1")?
            .execute([b(&r.id)])?;
        let mut link = self.tx.prepare_cached(
            "INSERT OR IGNORE INTO record_view_youth (contact_id, youth_id) VALUES (?1, ?2)",
        )?;
        for youth in &row.youth_ids {
            link.execute(params![b(&r.id), b(youth)])?;
        }
        Ok(())
    }

    fn delete_view(&mut self, id: Uuid) -> StorageResult<()> {
        self.tx
            .prepare_cached("DELETE FROM record_view WHERE id = ?1")?
            .execute([b(&id)])?;
        self.tx
            .prepare_cached("DELETE FROM record_view_youth WHERE contact_id = ?1")?
            .execute([b(&id)])?;
        Ok(())
    }

    fn set_view_seq(&mut self, seq: u64) -> StorageResult<()> {
        self.tx
            .prepare_cached("UPDATE view_state SET seq = ?1 WHERE id = 1")?
            .execute([to_i64(seq)])?;
        Ok(())
    }

    fn insert_login_attempt(
        &mut self,
        account_key: &SecretHash,
        address_key: &SecretHash,
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO login_attempts (at, account_key, address_key) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                ms(at),
                account_key.as_slice(),
                address_key.as_slice()
            ])?;
        Ok(())
    }

    fn delete_login_attempts(
        &mut self,
        account_key: &SecretHash,
        address_key: &SecretHash,
    ) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "DELETE FROM login_attempts WHERE account_key = ?1 AND address_key = ?2",
            )?
            .execute(params![account_key.as_slice(), address_key.as_slice()])?;
        Ok(())
    }

    fn prune_login_attempts(
        &mut self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StorageResult<()> {
        self.tx
            .prepare_cached("DELETE FROM login_attempts WHERE at < ?1")?
            .execute([ms(before)])?;
        self.tx
            .prepare_cached("DELETE FROM login_throttle_notices WHERE until <= ?1")?
            .execute([ms(now)])?;
        Ok(())
    }

    fn take_token(
        &mut self,
        key: &SecretHash,
        bucket: Bucket,
        now: DateTime<Utc>,
    ) -> StorageResult<bool> {
        // One statement, so that concurrent takers cannot both spend the last token.
        let n = self
            .tx
            .prepare_cached(
                "INSERT INTO rate_buckets (key, tokens, at, full_at)
                 VALUES (?1, ?2 - 1, ?4, ?4 + 1000.0 / ?3)
                 ON CONFLICT (key) DO UPDATE SET
                   tokens = min(?2, tokens + max(0, ?4 - at) * ?3 / 1000.0) - 1,
                   at = ?4,
                   full_at = ?4 + (?2 - (min(?2, tokens + max(0, ?4 - at) * ?3 / 1000.0) - 1))
                             * 1000.0 / ?3
                 WHERE min(?2, tokens + max(0, ?4 - at) * ?3 / 1000.0) >= 1",
            )?
            .execute(params![
                key.as_slice(),
                bucket.burst,
                bucket.per_second,
                ms(now)
            ])?;
        Ok(n > 0)
    }

    fn prune_rate_buckets(&mut self, now: DateTime<Utc>) -> StorageResult<u64> {
        let n = self
            .tx
            .prepare_cached("DELETE FROM rate_buckets WHERE full_at <= ?1")?
            .execute([ms(now)])?;
        Ok(n as u64)
    }

    fn claim_throttle_notice(
        &mut self,
        key: &SecretHash,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StorageResult<bool> {
        let n = self
            .tx
            .prepare_cached(
                "INSERT INTO login_throttle_notices (key, until) VALUES (?1, ?3)
                 ON CONFLICT (key) DO UPDATE SET until = excluded.until
                  WHERE login_throttle_notices.until <= ?2",
            )?
            .execute(params![key.as_slice(), ms(now), ms(until)])?;
        Ok(n > 0)
    }

    fn set_user_disabled(&mut self, user_id: Uuid, at: Option<DateTime<Utc>>) -> StorageResult<()> {
        let n = self
            .tx
            .prepare_cached("UPDATE users SET disabled_at = ?2 WHERE id = ?1")?
            .execute(params![b(&user_id), at.map(ms)])?;
        if n == 0 {
            return Err(StorageError::NotFound {
                what: "user",
                id: user_id,
            });
        }
        Ok(())
    }

    fn set_session_second_factor(
        &mut self,
        token_hash: &SecretHash,
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        self.tx
            .prepare_cached("UPDATE sessions SET second_factor_at = ?2 WHERE token_hash = ?1")?
            .execute(params![token_hash.as_slice(), ms(at)])?;
        Ok(())
    }

    fn delete_user_sessions_except(
        &mut self,
        user_id: Uuid,
        keep: &SecretHash,
    ) -> StorageResult<u64> {
        let n = self
            .tx
            .prepare_cached("DELETE FROM sessions WHERE user_id = ?1 AND token_hash <> ?2")?
            .execute(params![b(&user_id), keep.as_slice()])?;
        Ok(n as u64)
    }

    fn revoke_user_sessions(&mut self, user_id: Uuid) -> StorageResult<u64> {
        let n = self
            .tx
            .prepare_cached("DELETE FROM sessions WHERE user_id = ?1")?
            .execute([b(&user_id)])?;
        self.tx
            .prepare_cached("DELETE FROM login_challenges WHERE user_id = ?1")?
            .execute([b(&user_id)])?;
        Ok(n as u64)
    }

    fn insert_login_challenge(&mut self, challenge: &LoginChallenge) -> StorageResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO login_challenges (token_hash, user_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                challenge.token_hash.as_slice(),
                b(&challenge.user_id),
                ms(challenge.created_at),
                ms(challenge.expires_at)
            ])?;
        Ok(())
    }

    fn delete_login_challenge(&mut self, token_hash: &SecretHash) -> StorageResult<()> {
        self.tx
            .prepare_cached("DELETE FROM login_challenges WHERE token_hash = ?1")?
            .execute([token_hash.as_slice()])?;
        Ok(())
    }

    fn delete_login_challenges(&mut self, user_id: Uuid, now: DateTime<Utc>) -> StorageResult<()> {
        self.tx
            .prepare_cached("DELETE FROM login_challenges WHERE user_id = ?1 OR expires_at <= ?2")?
            .execute(params![b(&user_id), ms(now)])?;
        Ok(())
    }

    fn put_pending_totp(
        &mut self,
        user_id: Uuid,
        secret: &[u8],
        at: DateTime<Utc>,
    ) -> StorageResult<bool> {
        let n = self
            .tx
            .prepare_cached(
                "INSERT INTO user_totp (user_id, secret, created_at, confirmed_at, last_step)
                 VALUES (?1, ?2, ?3, NULL, 0)
                 ON CONFLICT (user_id) DO UPDATE SET
                    secret = excluded.secret, created_at = excluded.created_at, last_step = 0
                  WHERE user_totp.confirmed_at IS NULL",
            )?
            .execute(params![b(&user_id), secret, ms(at)])?;
        Ok(n > 0)
    }

    fn confirm_totp(&mut self, user_id: Uuid, step: u64, at: DateTime<Utc>) -> StorageResult<bool> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE user_totp SET confirmed_at = ?2, last_step = ?3
                  WHERE user_id = ?1 AND confirmed_at IS NULL",
            )?
            .execute(params![b(&user_id), ms(at), to_i64(step)])?;
        Ok(n > 0)
    }

    fn advance_totp_step(&mut self, user_id: Uuid, step: u64) -> StorageResult<bool> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE user_totp SET last_step = ?2
                  WHERE user_id = ?1 AND confirmed_at IS NOT NULL AND last_step < ?2",
            )?
            .execute(params![b(&user_id), to_i64(step)])?;
        Ok(n > 0)
    }

    fn delete_totp(&mut self, user_id: Uuid) -> StorageResult<()> {
        self.tx
            .prepare_cached("DELETE FROM user_totp WHERE user_id = ?1")?
            .execute([b(&user_id)])?;
        self.tx
            .prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1")?
            .execute([b(&user_id)])?;
        Ok(())
    }

    fn replace_recovery_codes(
        &mut self,
        user_id: Uuid,
        code_hashes: &[SecretHash],
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        self.tx
            .prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1")?
            .execute([b(&user_id)])?;
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?1, ?2, ?3)",
        )?;
        for hash in code_hashes {
            insert.execute(params![b(&user_id), hash.as_slice(), ms(at)])?;
        }
        Ok(())
    }

    fn use_recovery_code(
        &mut self,
        user_id: Uuid,
        code_hash: &SecretHash,
        at: DateTime<Utc>,
    ) -> StorageResult<bool> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE recovery_codes SET used_at = ?3
                  WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
            )?
            .execute(params![b(&user_id), code_hash.as_slice(), ms(at)])?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_10_keeps_the_highest_log_position_ever_given() {
        let mut conn = Connection::open_in_memory().expect("db");
        let tx = conn.transaction().expect("tx");
        for sql in &MIGRATIONS[..9] {
            tx.execute_batch(sql).expect("migration");
        }
        for _ in 0..3 {
            tx.execute(
                "INSERT INTO change_log (doc_id, op, received_at) VALUES (x'01', 'change', 1)",
                [],
            )
            .expect("log");
        }
        // The row holding the highest position is gone (an erased record's, say).
        tx.execute("DELETE FROM change_log WHERE seq = 3", [])
            .expect("delete");
        tx.execute_batch(MIGRATIONS[9]).expect("schema 10");
        tx.execute(
            "INSERT INTO change_log (doc_id, op, received_at) VALUES (x'02', 'leave', 2)",
            [],
        )
        .expect("a departure is logged");
        let last: i64 = tx
            .query_row("SELECT max(seq) FROM change_log", [], |r| r.get(0))
            .expect("seq");
        assert_eq!(last, 4, "position 3 is not given again");
        let kept: i64 = tx
            .query_row("SELECT count(*) FROM change_log", [], |r| r.get(0))
            .expect("count");
        assert_eq!(kept, 3);
    }

    #[test]
    fn decisions_made_before_schema_9_get_positions_in_the_order_they_were_made() {
        let mut conn = Connection::open_in_memory().expect("db");
        {
            let tx = conn.transaction().expect("tx");
            for sql in &MIGRATIONS[..8] {
                tx.execute_batch(sql).expect("migration");
            }
            tx.pragma_update(None, "user_version", 8).expect("version");
            for (id, at) in [(3u8, 20i64), (1, 10), (2, 20)] {
                tx.execute(
                    "INSERT INTO visit_reviews (contact_id, state, reason, user_id, at)
                     VALUES (?1, 'approved', NULL, ?2, ?3)",
                    params![vec![id; 16], vec![9u8; 16], at],
                )
                .expect("review");
            }
            tx.commit().expect("commit");
        }
        migrate(&mut conn).expect("to the current schema");
        let mut stmt = conn
            .prepare("SELECT contact_id FROM visit_reviews ORDER BY seq")
            .expect("query");
        let order: Vec<u8> = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .expect("rows")
            .map(|id| id.expect("id")[0])
            .collect();
        assert_eq!(order, vec![1, 2, 3]);
        let next: i64 = conn
            .query_row(
                "SELECT value FROM counters WHERE name = 'decisions'",
                [],
                |r| r.get(0),
            )
            .expect("counter");
        assert_eq!(next, 3, "the next decision takes position 4");
    }
}
