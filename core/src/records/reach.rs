//! What the indicators count of a young person's visits, actions and outcomes, kept in the
//! young person's `youth_index` row (schema 8) as each of those records is written or
//! removed, so that the tablet's indicators read one row per young person.
//!
//! The columns are a pure function of the other derived tables: whatever order records
//! arrive in (a visit synced before its young person, a rebuild), the row ends up as a
//! fresh reading of them would give. A young person absent from the tablet has no row, so
//! nothing of an erased one is kept here.

use rusqlite::{Connection, params};

use super::{ActionKind, ActionStatus};
use crate::error::Result;
use crate::index::enum_str;

/// The earliest visit, by the day entered, its instant, then its id (as the indicators
/// order them).
pub(crate) struct Visit<'a> {
    pub day: &'a str,
    pub secs: i64,
    pub nanos: u32,
    pub id: &'a [u8],
    pub commune: &'a str,
}

/// A visit of `youth` was written: it becomes their first if it is earlier.
pub(crate) fn visit_added(conn: &Connection, youth: &[u8], v: &Visit<'_>) -> Result<()> {
    conn.prepare_cached(
        "UPDATE youth_index SET first_visit_day = ?2, first_visit_secs = ?3,
            first_visit_nanos = ?4, first_visit_id = ?5, first_visit_commune = ?6
         WHERE id = ?1 AND (first_visit_day IS NULL OR (?2, ?3, ?4, ?5)
            < (first_visit_day, first_visit_secs, first_visit_nanos, first_visit_id))",
    )?
    .execute(params![youth, v.day, v.secs, v.nanos, v.id, v.commune])?;
    Ok(())
}

/// A visit of `youth` went (or changed): their first visit is looked up again.
pub(crate) fn visits_changed(conn: &Connection, youth: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "UPDATE youth_index SET (first_visit_day, first_visit_secs, first_visit_nanos,
                first_visit_id, first_visit_commune) =
            (SELECT c.local_day, c.at_secs, c.at_nanos, c.id, c.commune
             FROM contact_youth AS y
             JOIN contact_index AS c ON c.occurred_at = y.occurred_at AND c.id = y.contact_id
             WHERE y.youth_id = ?1
             ORDER BY c.local_day, c.at_secs, c.at_nanos, c.id LIMIT 1)
         WHERE id = ?1",
    )?
    .execute([youth])?;
    Ok(())
}

/// An action of `youth` was written or removed: their done actions are read again.
pub(crate) fn actions_changed(conn: &Connection, youth: &[u8]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT start_date, kind IN (?2, ?3) FROM action_index
         WHERE youth_id = ?1 AND status = ?4 ORDER BY start_date",
    )?;
    let mut rows = stmt.query(params![
        youth,
        enum_str(&ActionKind::Chantier5Days),
        enum_str(&ActionKind::ChantierMonth),
        enum_str(&ActionStatus::Done),
    ])?;
    let (mut first_done, mut chantiers) = (None, Vec::new());
    while let Some(r) = rows.next()? {
        let start: String = r.get(0)?;
        if r.get(1)? {
            chantiers.push(start.clone());
        }
        first_done.get_or_insert(start);
    }
    conn.prepare_cached(
        "UPDATE youth_index SET first_done = ?2, chantier_days = ?3 WHERE id = ?1",
    )?
    .execute(params![youth, first_done, chantiers.join(" ")])?;
    Ok(())
}

/// An outcome of `youth` was written or removed: their outcomes are read again.
pub(crate) fn outcomes_changed(conn: &Connection, youth: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "UPDATE youth_index SET outcomes = coalesce((SELECT group_concat(kind || '@' || date, ' ')
            FROM (SELECT kind, date FROM outcome_index WHERE youth_id = ?1 ORDER BY date, kind)),
            '')
         WHERE id = ?1",
    )?
    .execute([youth])?;
    Ok(())
}

/// A young person's row was just written: their records may have come first.
pub(crate) fn youth_written(conn: &Connection, youth: &[u8]) -> Result<()> {
    visits_changed(conn, youth)?;
    actions_changed(conn, youth)?;
    outcomes_changed(conn, youth)
}
