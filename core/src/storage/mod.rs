//! The encrypted SQLite file: opening with the key, pragmas, and numbered migrations.
//! Only `Store` holds the connection; nothing here is public outside the crate.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use crate::error::{Error, Result};

/// Migrations in order; migration N brings the schema to `user_version` N.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_initial.sql"),
    include_str!("../../migrations/0002_sync.sql"),
    include_str!("../../migrations/0003_versions.sql"),
    include_str!("../../migrations/0004_lists.sql"),
    include_str!("../../migrations/0005_roster.sql"),
    include_str!("../../migrations/0006_indicator_facts.sql"),
    include_str!("../../migrations/0007_visit_times.sql"),
    include_str!("../../migrations/0008_youth_reach.sql"),
    include_str!("../../migrations/0009_visits_by_day.sql"),
    include_str!("../../migrations/0010_lending.sql"),
    include_str!("../../migrations/0011_fewer_btrees.sql"),
];

/// Migrations that add derived rows only the documents can fill: a store that existed
/// before one of them is re-indexed when next opened (`Store::rebuild_index`).
const REINDEX_AFTER: &[u32] = &[4, 6, 7, 8, 11];
const REINDEX_KEY: &str = "reindex_pending";

pub const KEY_LEN: usize = 32;

/// A value of the `meta` table (store-wide settings and sync positions).
pub(crate) fn meta_get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn meta_put(conn: &Connection, key: &str, value: &[u8]) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(rusqlite::params![key, value])?;
    Ok(())
}

/// Opens (creating if needed) the store file with a raw 256-bit key. A raw key skips
/// SQLCipher's passphrase derivation: the key already comes from the platform keystore,
/// and opening must stay fast.
pub fn open(path: &Path, key: &[u8]) -> Result<Connection> {
    if key.len() != KEY_LEN {
        return Err(Error::BadKeyLength { expected: KEY_LEN });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // Silences SQLCipher's own stderr logging of a wrong key: we report it ourselves.
    let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE;");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))?;
    // The first read tells whether the key is right; nothing is written before it.
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::NotADatabase => {
            return Err(Error::WrongKey);
        }
        Err(e) => return Err(e.into()),
    }
    // 16 MB of page cache: every page read from disk is decrypted, so a warm cache is what
    // keeps search and duplicate checks fast on a large caseload.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA secure_delete = ON;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -16000;",
    )?;
    migrate(&conn)?;
    Ok(conn)
}

/// After an erasure (decision 14): the search index's segments still hold the erased
/// names as deleted entries until they are merged, and the WAL holds the pages from before
/// the delete. `optimize` rewrites the index without them (`secure_delete` zeroed the rows
/// themselves) and the checkpoint cuts the WAL to nothing. A checkpoint held back by a
/// reader is not an error: the next erasure or close completes it.
pub(crate) fn scrub(conn: &Connection) -> Result<()> {
    conn.execute_batch("INSERT INTO youth_fts(youth_fts) VALUES ('optimize');")?;
    cut_wal(conn)
}

/// Cuts the WAL to nothing: the pages from before a delete leave the file (what goes
/// without touching the search index, such as a lent file, needs only this).
pub(crate) fn cut_wal(conn: &Connection) -> Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

fn migrate(conn: &Connection) -> Result<()> {
    let known = MIGRATIONS.len() as u32;
    let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(Error::NewerSchema { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        if found > 0 && REINDEX_AFTER.contains(&(i as u32 + 1)) {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, x'01')",
                [REINDEX_KEY],
            )?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as u32)?;
        tx.commit()?;
    }
    Ok(())
}

/// Whether a migration asked for the derived tables to be rebuilt (see `REINDEX_AFTER`).
pub(crate) fn needs_reindex(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM meta WHERE key = ?1)",
        [REINDEX_KEY],
        |r| r.get(0),
    )?)
}

/// Clears the request, in the rebuild's own transaction.
pub(crate) fn reindexed(conn: &Connection) -> Result<()> {
    conn.execute("DELETE FROM meta WHERE key = ?1", [REINDEX_KEY])?;
    Ok(())
}

/// The SQLCipher version linked, for diagnostics ("" if the build is not SQLCipher).
pub fn cipher_version(conn: &Connection) -> String {
    conn.query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .unwrap_or_default()
}
