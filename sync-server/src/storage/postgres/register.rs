//! The erasure register in PostgreSQL (see `storage::register`): a table of its own schema,
//! shared by every instance on the database and left out of `backup`, so that restoring an
//! older archive (`pg_restore --clean`, which only replaces what the archive holds) keeps
//! the register and re-applies every erasure made since.
//!
//! It has its own connection, outside the pool: it is written from inside a write
//! transaction (before that one commits), which already holds a pooled connection.

use std::sync::{Mutex, MutexGuard};

use chrono::DateTime;
use postgres::{Client, Config, NoTls};
use uuid::Uuid;

use super::backend;
use crate::storage::register::{Entries, Registered, Rewrite};
use crate::storage::{StorageError, StorageResult, Tombstone};

/// The schema holding the register (`pg_dump --exclude-schema`).
pub(crate) const SCHEMA: &str = "repere_register";

/// Created when an instance connects, outside the numbered migrations: a database restored
/// from a backup has no register until then.
pub(crate) fn create(client: &mut Client) -> StorageResult<()> {
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {SCHEMA};
             CREATE TABLE IF NOT EXISTS {SCHEMA}.entries (
                 n           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 id          UUID NOT NULL,
                 team_id     UUID NOT NULL,
                 at          BIGINT NOT NULL,
                 -- a rectification: the generation it rewrote the record to, and the
                 -- names of the fields changed (never a value); NULL for an erasure
                 generation  BIGINT,
                 fields      TEXT
             );"
        ))
        .map_err(|e| backend(&e))
}

/// One row to insert: id, team, time (ms), and for a rectification its generation and
/// the fields' names.
type Row = (Uuid, Uuid, i64, Option<i64>, Option<String>);

pub struct TableRegister {
    config: Config,
    client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for TableRegister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableRegister")
    }
}

impl TableRegister {
    pub(crate) fn open(config: Config) -> StorageResult<TableRegister> {
        let register = TableRegister {
            config,
            client: Mutex::new(None),
        };
        drop(register.connected()?);
        Ok(register)
    }

    /// The register's connection, opened again if it was lost.
    fn connected(&self) -> StorageResult<MutexGuard<'_, Option<Client>>> {
        let mut guard = self
            .client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.as_ref().is_none_or(Client::is_closed) {
            let client = self.config.connect(NoTls).map_err(|e| {
                StorageError::Backend(format!(
                    "erasure register: cannot connect to the database: {}",
                    backend(&e)
                ))
            })?;
            *guard = Some(client);
        }
        Ok(guard)
    }

    fn insert(&self, rows: &[Row]) -> StorageResult<()> {
        let mut guard = self.connected()?;
        let Some(client) = guard.as_mut() else {
            return Err(StorageError::Backend(
                "erasure register: no connection".into(),
            ));
        };
        let register = |e: postgres::Error| {
            StorageError::Backend(format!("erasure register: {}", backend(&e)))
        };
        // Committed on its own, before the erasure's transaction commits.
        let mut tx = client.transaction().map_err(register)?;
        for (id, team, at, generation, fields) in rows {
            tx.execute(
                &format!(
                    "INSERT INTO {SCHEMA}.entries (id, team_id, at, generation, fields)
                     VALUES ($1, $2, $3, $4, $5)"
                ),
                &[id, team, at, generation, fields],
            )
            .map_err(register)?;
        }
        tx.commit().map_err(register)
    }

    pub(crate) fn append(&self, erased: &[Tombstone]) -> StorageResult<()> {
        let rows: Vec<_> = erased
            .iter()
            .map(|t| (t.id, t.team_id, t.erased_at.timestamp_millis(), None, None))
            .collect();
        self.insert(&rows)
    }

    pub(crate) fn append_rewrites(&self, rewrites: &[Rewrite]) -> StorageResult<()> {
        let rows: Vec<_> = rewrites
            .iter()
            .map(|r| {
                (
                    r.id,
                    r.team_id,
                    r.at.timestamp_millis(),
                    Some(i64::from(r.generation)),
                    Some(r.fields.join(",")),
                )
            })
            .collect();
        self.insert(&rows)
    }

    pub(crate) fn entries(&self) -> StorageResult<Entries> {
        let mut guard = self.connected()?;
        let Some(client) = guard.as_mut() else {
            return Err(StorageError::Backend(
                "erasure register: no connection".into(),
            ));
        };
        let rows = client
            .query(
                &format!(
                    "SELECT n, id, team_id, at, generation, fields FROM {SCHEMA}.entries ORDER BY n"
                ),
                &[],
            )
            .map_err(|e| StorageError::Backend(format!("erasure register: {}", backend(&e))))?;
        let mut out = Entries::default();
        for row in rows {
            let n: i64 = row.try_get(0).unwrap_or_default();
            let damaged =
                || StorageError::Corrupt(format!("erasure register entry {n} is damaged"));
            let id: Uuid = row.try_get(1).map_err(|_| damaged())?;
            let team_id: Uuid = row.try_get(2).map_err(|_| damaged())?;
            let at = row
                .try_get::<_, i64>(3)
                .ok()
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(damaged)?;
            let generation: Option<i64> = row.try_get(4).map_err(|_| damaged())?;
            let fields: Option<String> = row.try_get(5).map_err(|_| damaged())?;
            match (generation, fields) {
                (None, None) => out.erased.push(Registered {
                    id,
                    team_id,
                    erased_at: at,
                }),
                (Some(generation), Some(fields)) => out.rewritten.push(Rewrite {
                    id,
                    team_id,
                    at,
                    generation: u32::try_from(generation).map_err(|_| damaged())?,
                    fields: fields
                        .split(',')
                        .filter(|f| !f.is_empty())
                        .map(str::to_string)
                        .collect(),
                }),
                _ => return Err(damaged()),
            }
        }
        Ok(out)
    }
}
