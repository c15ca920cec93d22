//! The embedded storage: one SQLite file (`repere.db` in the data directory), WAL mode,
//! `synchronous = FULL` (a committed sync survives a power cut), one writer connection and
//! one reader connection, each behind a mutex. Schema in `sync-server/migrations/NNNN_*.sql`,
//! applied in order and tracked with `PRAGMA user_version`.
//!
//! rusqlite here is the workspace's SQLCipher build; the server file is not encrypted
//! (no key is set): protect the data directory with the machine's disk encryption.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use repere_core::RecordKind;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use uuid::Uuid;

use super::{
    Device, DocumentWrite, EnrolmentCode, Organisation, ReadTx, Role, SecretHash, Storage,
    StorageError, StorageResult, StoredDocument, Team, TeamCounts, Tombstone, Tx, User,
};

/// The database file inside the data directory.
pub const DB_FILE: &str = "repere.db";

const MIGRATIONS: &[&str] = &[include_str!("../../migrations/0001_initial.sql")];

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
    /// Opens (creating if needed) `repere.db` in `data_dir`, and migrates it.
    pub fn open_dir(data_dir: &Path) -> StorageResult<SqliteStorage> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StorageError::Backend(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        Self::open(&data_dir.join(DB_FILE))
    }

    pub fn open(path: &Path) -> StorageResult<SqliteStorage> {
        let mut writer = connect(path)?;
        migrate(&mut writer)?;
        let reader = connect(path)?;
        Ok(SqliteStorage {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }
}

fn connect(path: &Path) -> StorageResult<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // journal_mode answers with a row.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::Backend(format!(
            "cannot use WAL mode (got {mode})"
        )));
    }
    // secure_delete: an erased record's bytes are overwritten, not left in free pages.
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
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

const DEVICE_COLUMNS: &str =
    "d.id, d.team_id, t.organisation_id, d.label, d.enrolled_at, d.revoked_at, d.last_sync_at
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
    })
}

const DOCUMENT_COLUMNS: &str = "id, kind, team_id, doc, heads, seq, received_at FROM documents";

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

    fn devices(&mut self, team_id: Option<Uuid>) -> StorageResult<Vec<Device>> {
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} WHERE ?1 IS NULL OR d.team_id = ?1 ORDER BY d.enrolled_at, d.id"
        ))?;
        let rows = stmt.query_map([team_id.as_ref().map(b)], device_row)?;
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
                "INSERT INTO devices (id, team_id, label, token_hash, enrolled_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                b(&device.id),
                b(&device.team_id),
                device.label,
                token_hash.as_slice(),
                ms(device.enrolled_at)
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

    fn touch_device(&mut self, id: Uuid, at: DateTime<Utc>) -> StorageResult<()> {
        self.tx
            .prepare_cached("UPDATE devices SET last_sync_at = ?2 WHERE id = ?1")?
            .execute(params![b(&id), ms(at)])?;
        Ok(())
    }

    fn put_document(&mut self, doc: DocumentWrite<'_>) -> StorageResult<u64> {
        let seq = self.next_seq(doc.id, "change", doc.device_id, doc.received_at)?;
        self.tx
            .prepare_cached(
                "INSERT INTO documents (id, kind, team_id, doc, heads, seq, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET
                    kind = excluded.kind, team_id = excluded.team_id, doc = excluded.doc,
                    heads = excluded.heads, seq = excluded.seq, received_at = excluded.received_at",
            )?
            .execute(params![
                b(&doc.id),
                doc.kind.as_str(),
                b(&doc.team_id),
                doc.doc,
                heads_to_blob(doc.heads),
                to_i64(seq),
                ms(doc.received_at)
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
        let seq = self.next_seq(id, "erase", None, at)?;
        self.tx
            .prepare_cached("DELETE FROM documents WHERE id = ?1")?
            .execute([b(&id)])?;
        self.tx
            .prepare_cached(
                "INSERT INTO tombstones (id, team_id, seq, erased_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![b(&id), b(&team_id), to_i64(seq), ms(at)])?;
        Ok(Some(Tombstone {
            id,
            team_id,
            seq,
            erased_at: at,
        }))
    }
}
