//! The team's roster and the coordinators' decisions on its visits, as the sync brings
//! them (protocol version 5, docs/sync-protocol.md "Team news"). Read-only here: the
//! server is their truth, and `sync_apply` stores them with the documents they go with.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::error::Result;
use crate::storage::{meta_get, meta_put};
use crate::store::Store;
use crate::sync::protocol::{DecisionState, TeamNews, TeamSince};

const ROSTER_VERSION_KEY: &str = "roster_version";
const DECISIONS_CURSOR_KEY: &str = "decisions_cursor";

/// A member of the tablet's team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    pub id: Uuid,
    /// Personal data: shown, never logged.
    pub name: String,
    /// Inactive members still name past records; only active ones are offered for new ones.
    pub active: bool,
}

/// A coordinator's latest decision on a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitDecision {
    pub contact_id: Uuid,
    pub state: DecisionState,
    /// Why it was flagged (empty otherwise).
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl VisitDecision {
    /// Whether the binôme has something to do about it (shown in « à faire »).
    pub fn asks_for_action(&self) -> bool {
        self.state == DecisionState::Flagged
    }
}

fn meta_u64(conn: &Connection, key: &str) -> Result<u64> {
    Ok(meta_get(conn, key)?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, u64::from_be_bytes))
}

fn put_meta_u64(conn: &Connection, key: &str, value: u64) -> Result<()> {
    meta_put(conn, key, &value.to_be_bytes())
}

/// What the store holds, as the next request tells the server.
pub(crate) fn since(conn: &Connection) -> Result<TeamSince> {
    Ok(TeamSince {
        roster: meta_u64(conn, ROSTER_VERSION_KEY)?,
        decisions: meta_u64(conn, DECISIONS_CURSOR_KEY)?,
    })
}

/// What an answer's team news changed on this tablet, for the store's listeners.
pub(crate) struct NewsApplied {
    pub roster_changed: bool,
    /// The visits held here that a decision is about.
    pub decided: Vec<Uuid>,
}

/// Stores what an answer brought, inside the answer's transaction. An answer from an
/// older server (no news, position 0) leaves everything as it is.
pub(crate) fn apply(tx: &Connection, news: &TeamNews) -> Result<NewsApplied> {
    if let Some(roster) = &news.roster {
        tx.prepare_cached("DELETE FROM team_members")?.execute([])?;
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO team_members (id, name, active) VALUES (?1, ?2, ?3)",
        )?;
        for m in &roster.members {
            insert.execute(params![m.id.as_bytes().as_slice(), m.name, m.active])?;
        }
        put_meta_u64(tx, ROSTER_VERSION_KEY, roster.version)?;
    }
    let mut upsert = tx.prepare_cached(
        "INSERT OR REPLACE INTO visit_decisions (contact_id, state, reason, at_ms)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut held = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM documents WHERE id = ?1)")?;
    let mut decided = Vec::new();
    for d in &news.decisions {
        let id = d.contact_id.as_bytes().as_slice();
        upsert.execute(params![id, d.state.as_str(), d.reason, d.at_ms])?;
        if held.query_row([id], |r| r.get(0))? {
            decided.push(d.contact_id);
        }
    }
    if news.decisions_cursor > 0 {
        put_meta_u64(tx, DECISIONS_CURSOR_KEY, news.decisions_cursor)?;
    }
    Ok(NewsApplied {
        roster_changed: news.roster.is_some(),
        decided,
    })
}

/// Forgets the roster and every decision: the store enrolled again (perhaps in another
/// team) or the server's log restarted; the next sync brings them again.
pub(crate) fn forget(tx: &Connection) -> Result<()> {
    tx.prepare_cached("DELETE FROM team_members")?.execute([])?;
    tx.prepare_cached("DELETE FROM visit_decisions")?
        .execute([])?;
    tx.prepare_cached("DELETE FROM meta WHERE key IN (?1, ?2)")?
        .execute([ROSTER_VERSION_KEY, DECISIONS_CURSOR_KEY])?;
    Ok(())
}

/// An erased visit takes its decision along (the reason may name someone).
pub(crate) fn erase_decision(tx: &Connection, contact_id: Uuid) -> Result<()> {
    tx.prepare_cached("DELETE FROM visit_decisions WHERE contact_id = ?1")?
        .execute([contact_id.as_bytes().as_slice()])?;
    Ok(())
}

fn decision_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<VisitDecision>> {
    let (id, state, reason, at_ms): (Vec<u8>, String, String, i64) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
    Ok(
        match (
            Uuid::from_slice(&id),
            DecisionState::parse(&state),
            DateTime::from_timestamp_millis(at_ms),
        ) {
            (Ok(contact_id), Some(state), Some(at)) => Some(VisitDecision {
                contact_id,
                state,
                reason,
                at,
            }),
            _ => None,
        },
    )
}

impl Store {
    /// The team's members: active ones first, each group by name (accents and case
    /// folded). Empty until the first sync with a version 5 server.
    pub fn roster(&self) -> Result<Vec<TeamMember>> {
        self.unlocked()?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name, active FROM team_members")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })?;
        let mut members = Vec::new();
        for row in rows {
            let (id, name, active) = row?;
            if let Ok(id) = Uuid::from_slice(&id) {
                members.push((crate::text::fold(&name), TeamMember { id, name, active }));
            }
        }
        members.sort_by(|(a, ma), (b, mb)| {
            mb.active
                .cmp(&ma.active)
                .then_with(|| a.cmp(b))
                .then_with(|| ma.id.cmp(&mb.id))
        });
        Ok(members.into_iter().map(|(_, m)| m).collect())
    }

    /// The display name of a member of the team, active or not; `None` for an id the
    /// roster does not know (another team's, or before the roster came).
    pub fn member_name(&self, id: Uuid) -> Result<Option<String>> {
        self.unlocked()?;
        Ok(self
            .conn
            .prepare_cached("SELECT name FROM team_members WHERE id = ?1")?
            .query_row([id.as_bytes().as_slice()], |r| r.get(0))
            .optional()?)
    }

    /// The coordinators' latest decision on a visit, if any.
    pub fn visit_decision(&self, contact_id: Uuid) -> Result<Option<VisitDecision>> {
        self.unlocked()?;
        Ok(self
            .conn
            .prepare_cached(
                "SELECT contact_id, state, reason, at_ms FROM visit_decisions
                  WHERE contact_id = ?1",
            )?
            .query_row([contact_id.as_bytes().as_slice()], decision_from_row)
            .optional()?
            .flatten())
    }

    /// The decisions that ask the binôme for action (flagged visits this tablet has),
    /// newest first.
    pub fn flagged_visits(&self, offset: u32, limit: u32) -> Result<Vec<VisitDecision>> {
        self.unlocked()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT contact_id, state, reason, at_ms FROM visit_decisions
              WHERE state = ?1 AND EXISTS (SELECT 1 FROM documents WHERE id = contact_id)
              ORDER BY at_ms DESC, contact_id LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt.query_map(
            params![DecisionState::Flagged.as_str(), limit, offset],
            decision_from_row,
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.extend(row?);
        }
        Ok(out)
    }
}
