//! Derived tables for lists, search and indicators. They are written in the same
//! transaction as the document they come from, and can be rebuilt from the documents.

use rusqlite::{Connection, params};
use uuid::Uuid;

use crate::communes::Communes;
use crate::error::Result;
use crate::records::{AnyRecord, Youth};
use crate::text::{fold, phonetic, words};

/// Removes every derived row of a record.
pub fn remove(conn: &Connection, id: Uuid) -> Result<()> {
    let id = id.as_bytes().as_slice();
    let rowid: Option<i64> = conn
        .prepare_cached("SELECT rowid FROM youth_index WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .ok();
    if let Some(rowid) = rowid {
        conn.prepare_cached("DELETE FROM youth_fts WHERE rowid = ?1")?
            .execute([rowid])?;
        conn.prepare_cached("DELETE FROM youth_index WHERE rowid = ?1")?
            .execute([rowid])?;
    }
    for sql in [
        "DELETE FROM contact_index WHERE id = ?1",
        "DELETE FROM contact_youth WHERE contact_id = ?1",
        "DELETE FROM tour_index WHERE id = ?1",
        "DELETE FROM action_index WHERE id = ?1",
        "DELETE FROM outcome_index WHERE id = ?1",
        "DELETE FROM review_task_index WHERE id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([id])?;
    }
    Ok(())
}

/// Writes the derived rows of a record, replacing any earlier ones.
pub fn index(conn: &Connection, id: Uuid, record: &AnyRecord, fresh: bool) -> Result<()> {
    if !fresh {
        remove(conn, id)?;
    }
    let bid = id.as_bytes().as_slice();
    match record {
        AnyRecord::Youth(y) => index_youth(conn, bid, y)?,
        AnyRecord::Contact(c) => {
            let at = c
                .occurred_at
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            conn.prepare_cached(
                "INSERT INTO contact_index (id, team_id, occurred_at, commune, kind, tour_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                bid,
                c.team_id.as_bytes().as_slice(),
                at,
                c.commune,
                enum_str(&c.kind),
                c.tour_id.as_ref().map(|t| t.as_bytes().to_vec()),
            ])?;
            let mut stmt = conn.prepare_cached(
                "INSERT INTO contact_youth (contact_id, youth_id) VALUES (?1, ?2)",
            )?;
            for y in &c.youth_ids {
                stmt.execute(params![bid, y.as_bytes().as_slice()])?;
            }
        }
        AnyRecord::Tour(t) => {
            conn.prepare_cached(
                "INSERT INTO tour_index (id, team_id, date, status) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                bid,
                t.team_id.as_bytes().as_slice(),
                t.date.to_string(),
                enum_str(&t.status)
            ])?;
        }
        AnyRecord::Action(a) => {
            conn.prepare_cached(
                "INSERT INTO action_index (id, youth_id, team_id, kind, start_date, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                bid,
                a.youth_id.as_bytes().as_slice(),
                a.team_id.as_bytes().as_slice(),
                enum_str(&a.kind),
                a.start_date.to_string(),
                enum_str(&a.status)
            ])?;
        }
        AnyRecord::Outcome(o) => {
            conn.prepare_cached(
                "INSERT INTO outcome_index (id, youth_id, team_id, kind, date)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                bid,
                o.youth_id.as_bytes().as_slice(),
                o.team_id.as_bytes().as_slice(),
                enum_str(&o.kind),
                o.date.to_string()
            ])?;
        }
        AnyRecord::ReviewTask(t) => {
            conn.prepare_cached(
                "INSERT INTO review_task_index (id, contact_id, status, asked_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                bid,
                t.contact_id.as_bytes().as_slice(),
                enum_str(&t.status),
                t.asked_at
                    .with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ])?;
        }
    }
    Ok(())
}

fn index_youth(conn: &Connection, bid: &[u8], y: &Youth) -> Result<()> {
    let folded = |v: &Option<String>| v.as_deref().map(fold).filter(|s| !s.is_empty());
    let (first, alias, last) = (
        folded(&y.first_name),
        folded(&y.alias),
        folded(&y.last_name),
    );
    let phon = |v: &Option<String>| v.as_deref().and_then(|s| words(s).next()).map(phonetic);
    conn.prepare_cached(
        "INSERT INTO youth_index (id, team_id, display_name, first_folded, alias_folded,
            last_folded, phon_first, phon_alias, phon_last, birth_date, birth_year, age_band,
            home_commune, status, first_contact_date)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        bid,
        y.team_id.as_bytes().as_slice(),
        y.display_name(),
        first,
        alias,
        last,
        phon(&first),
        phon(&alias),
        phon(&last),
        y.birth_date.map(|d| d.to_string()),
        y.birth_year
            .or(y.birth_date.map(|d| chrono::Datelike::year(&d))),
        y.age_band.as_ref().map(enum_str),
        y.home_commune,
        enum_str(&y.status),
        y.first_contact_date.to_string(),
    ])?;
    let rowid = conn.last_insert_rowid();
    let names = [first, alias, last]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let place = y
        .home_commune
        .as_deref()
        .and_then(|c| Communes::global().get(c))
        .map(|c| fold(c.name))
        .unwrap_or_default();
    conn.prepare_cached("INSERT INTO youth_fts (rowid, names, place) VALUES (?1, ?2, ?3)")?
        .execute(params![rowid, names, place])?;
    Ok(())
}

/// The serde name of a unit enum variant ("chantier5_days", "street"…).
pub fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Empties every derived table (before a rebuild).
pub fn clear(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "DELETE FROM youth_fts; DELETE FROM youth_index; DELETE FROM contact_index;
         DELETE FROM contact_youth; DELETE FROM tour_index; DELETE FROM action_index;
         DELETE FROM outcome_index; DELETE FROM review_task_index;",
    )?;
    Ok(())
}
