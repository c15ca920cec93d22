//! The register of erasures: one line per erased record (id, team, date; never content),
//! appended before the erasure commits and kept beside the database but outside it, so that
//! restoring an older backup re-applies every erasure made since (DESIGN decision 8: an
//! erased record never comes back).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{StorageError, StorageResult, Tombstone};

/// The register's file inside the data directory (`admin restore` does not replace it).
pub const REGISTER_FILE: &str = "erasure-register.tsv";

#[derive(Debug, Clone)]
pub struct ErasureRegister {
    path: PathBuf,
}

/// One erasure as the register keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub id: Uuid,
    pub team_id: Uuid,
    pub erased_at: DateTime<Utc>,
}

impl ErasureRegister {
    pub fn in_dir(data_dir: &Path) -> ErasureRegister {
        ErasureRegister {
            path: data_dir.join(REGISTER_FILE),
        }
    }

    /// Appends the erasures and syncs the file before returning: an erasure is in the
    /// register before the database commits it.
    pub fn append(&self, erased: &[Tombstone]) -> StorageResult<()> {
        let io = |e: std::io::Error| StorageError::Backend(format!("erasure register: {e}"));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        let mut lines = String::new();
        for t in erased {
            lines.push_str(&format!(
                "{}\t{}\t{}\n",
                t.id,
                t.team_id,
                t.erased_at.to_rfc3339()
            ));
        }
        file.write_all(lines.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Every erasure registered; a damaged line is an error (never skipped in silence).
    pub fn entries(&self) -> StorageResult<Vec<Registered>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StorageError::Backend(format!("erasure register: {e}"))),
        };
        let mut out = Vec::new();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| StorageError::Backend(format!("erasure register: {e}")))?;
            if line.is_empty() {
                continue;
            }
            let damaged =
                || StorageError::Corrupt(format!("erasure register line {} is damaged", n + 1));
            let mut parts = line.split('\t');
            let (Some(id), Some(team), Some(at), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(damaged());
            };
            out.push(Registered {
                id: Uuid::parse_str(id).map_err(|_| damaged())?,
                team_id: Uuid::parse_str(team).map_err(|_| damaged())?,
                erased_at: DateTime::parse_from_rfc3339(at)
                    .map_err(|_| damaged())?
                    .with_timezone(&Utc),
            });
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
        assert!(register.entries().expect("empty").is_empty());
        let t = Tombstone {
            id: Uuid::now_v7(),
            team_id: Uuid::now_v7(),
            seq: 9,
            erased_at: Utc::now(),
        };
        register.append(std::slice::from_ref(&t)).expect("append");
        let read = register.entries().expect("read");
        assert_eq!(read.len(), 1);
        assert_eq!((read[0].id, read[0].team_id), (t.id, t.team_id));
        std::fs::write(dir.path().join(REGISTER_FILE), "pas une ligne\n").expect("damage");
        assert!(register.entries().is_err());
    }
}
