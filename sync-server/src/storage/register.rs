//! The register of erasures: one line per erased record (id, team, date; never content),
//! and one per record rewritten by a rectification (id, team, date, generation and the
//! names of the fields changed; never a value), appended before the change commits and kept
//! beside the database but outside it, so that restoring an older backup re-applies every
//! erasure and rectification made since (DESIGN decision 8: an erased record, or an erased
//! value, never comes back). With SQLite it is a file beside the database; with
//! PostgreSQL, a table that backups leave out (`postgres::TableRegister`).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::postgres::TableRegister;
use super::{StorageError, StorageResult, Tombstone};

/// The register's file inside the data directory (`admin restore` does not replace it).
pub const REGISTER_FILE: &str = "erasure-register.tsv";

#[derive(Debug, Clone)]
pub struct ErasureRegister {
    place: Place,
}

#[derive(Debug, Clone)]
enum Place {
    File(PathBuf),
    Table(Arc<TableRegister>),
}

/// One erasure as the register keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub id: Uuid,
    pub team_id: Uuid,
    pub erased_at: DateTime<Utc>,
}

/// One rectification as the register keeps it: which fields, never what they held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub id: Uuid,
    pub team_id: Uuid,
    pub at: DateTime<Utc>,
    /// The generation the record was rewritten to.
    pub generation: u32,
    pub fields: Vec<String>,
}

/// Everything the register holds, in the order it was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    pub erased: Vec<Registered>,
    pub rewritten: Vec<Rewrite>,
}

const REWRITE_MARK: &str = "rewrite";

impl ErasureRegister {
    pub fn in_dir(data_dir: &Path) -> ErasureRegister {
        ErasureRegister {
            place: Place::File(data_dir.join(REGISTER_FILE)),
        }
    }

    /// The register of a PostgreSQL database (`PostgresStorage::erasure_register`).
    pub fn in_table(table: TableRegister) -> ErasureRegister {
        ErasureRegister {
            place: Place::Table(Arc::new(table)),
        }
    }

    /// Appends the erasures and syncs the file before returning: an erasure is in the
    /// register before the database commits it.
    pub fn append(&self, erased: &[Tombstone]) -> StorageResult<()> {
        let path = match &self.place {
            Place::File(path) => path,
            Place::Table(table) => return table.append(erased),
        };
        let lines: String = erased
            .iter()
            .map(|t| format!("{}\t{}\t{}\n", t.id, t.team_id, t.erased_at.to_rfc3339()))
            .collect();
        Self::write(path, &lines)
    }

    /// Appends rectifications, synced like erasures.
    pub fn append_rewrites(&self, rewrites: &[Rewrite]) -> StorageResult<()> {
        let path = match &self.place {
            Place::File(path) => path,
            Place::Table(table) => return table.append_rewrites(rewrites),
        };
        let lines: String = rewrites
            .iter()
            .map(|r| {
                format!(
                    "{}\t{}\t{}\t{REWRITE_MARK}\t{}\t{}\n",
                    r.id,
                    r.team_id,
                    r.at.to_rfc3339(),
                    r.generation,
                    r.fields.join(",")
                )
            })
            .collect();
        Self::write(path, &lines)
    }

    fn write(path: &Path, lines: &str) -> StorageResult<()> {
        let io = |e: std::io::Error| StorageError::Backend(format!("erasure register: {e}"));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        file.write_all(lines.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Every erasure and rectification registered; a damaged line is an error (never
    /// skipped in silence).
    pub fn entries(&self) -> StorageResult<Entries> {
        let path = match &self.place {
            Place::File(path) => path,
            Place::Table(table) => return table.entries(),
        };
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entries::default()),
            Err(e) => return Err(StorageError::Backend(format!("erasure register: {e}"))),
        };
        let mut out = Entries::default();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| StorageError::Backend(format!("erasure register: {e}")))?;
            if line.is_empty() {
                continue;
            }
            let damaged =
                || StorageError::Corrupt(format!("erasure register line {} is damaged", n + 1));
            let parts: Vec<&str> = line.split('\t').collect();
            let (id, team, at) = match parts.as_slice() {
                [id, team, at, ..] => (
                    Uuid::parse_str(id).map_err(|_| damaged())?,
                    Uuid::parse_str(team).map_err(|_| damaged())?,
                    DateTime::parse_from_rfc3339(at)
                        .map_err(|_| damaged())?
                        .with_timezone(&Utc),
                ),
                _ => return Err(damaged()),
            };
            match parts.as_slice() {
                [_, _, _] => out.erased.push(Registered {
                    id,
                    team_id: team,
                    erased_at: at,
                }),
                [_, _, _, REWRITE_MARK, generation, fields] => out.rewritten.push(Rewrite {
                    id,
                    team_id: team,
                    at,
                    generation: generation.parse().map_err(|_| damaged())?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_ids_and_dates_and_refuses_a_damaged_line() {
        let dir = tempfile::tempdir().expect("dir");
        let register = ErasureRegister::in_dir(dir.path());
        assert_eq!(register.entries().expect("empty"), Entries::default());
        let t = Tombstone {
            id: Uuid::now_v7(),
            team_id: Uuid::now_v7(),
            seq: 9,
            erased_at: Utc::now(),
        };
        register.append(std::slice::from_ref(&t)).expect("append");
        let rewrite = Rewrite {
            id: Uuid::now_v7(),
            team_id: t.team_id,
            at: t.erased_at,
            generation: 2,
            fields: vec!["profile_flags".into(), "notes".into()],
        };
        register
            .append_rewrites(std::slice::from_ref(&rewrite))
            .expect("append");
        let read = register.entries().expect("read");
        assert_eq!(read.erased.len(), 1);
        assert_eq!(
            (read.erased[0].id, read.erased[0].team_id),
            (t.id, t.team_id)
        );
        let text = std::fs::read_to_string(dir.path().join(REGISTER_FILE)).expect("read");
        assert!(text.contains("\trewrite\t2\tprofile_flags,notes\n"));
        let mut at_second = rewrite.clone();
        at_second.at = DateTime::parse_from_rfc3339(&rewrite.at.to_rfc3339())
            .expect("rfc3339")
            .with_timezone(&Utc);
        assert_eq!(read.rewritten, vec![at_second]);
        std::fs::write(dir.path().join(REGISTER_FILE), "pas une ligne\n").expect("damage");
        assert!(register.entries().is_err());
        std::fs::write(
            dir.path().join(REGISTER_FILE),
            format!(
                "{}\t{}\t{}\trewrite\tdeux\tnotes\n",
                t.id,
                t.team_id,
                t.erased_at.to_rfc3339()
            ),
        )
        .expect("damage");
        assert!(register.entries().is_err());
    }
}
