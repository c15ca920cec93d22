//! Derived tables for lists, search and indicators. They are written in the same
//! transaction as the document they come from, and can be rebuilt from the documents.
//! Each record kind declares its own rows (`Record::write_derived`, `Record::DERIVED`).

use rusqlite::Connection;
use uuid::Uuid;

use crate::error::Result;
use crate::records::AnyRecord;

/// Removes every derived row of a record.
pub fn remove(conn: &Connection, id: Uuid) -> Result<()> {
    AnyRecord::remove_derived(conn, id.as_bytes())
}

/// Writes the derived rows of a record, replacing any earlier ones.
pub fn index(conn: &Connection, id: Uuid, record: &AnyRecord, fresh: bool) -> Result<()> {
    if !fresh {
        remove(conn, id)?;
    }
    record.write_derived(conn, id.as_bytes())
}

/// Empties every derived table (before a rebuild).
pub fn clear(conn: &Connection) -> Result<()> {
    AnyRecord::clear_derived(conn)
}

/// The serde name of a unit enum variant ("chantier5_days", "street"…).
pub fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}
