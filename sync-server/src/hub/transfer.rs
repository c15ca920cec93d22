//! A young person transferred to another team (docs/sync-protocol.md, "Transfers"): their
//! record and their path (actions, outcomes) change team by a server change; the visits
//! stay with the team that made them. The old team's tablets are told by a departure at
//! its own log position; the new team's pull the records as changed ones.

use chrono::{DateTime, Utc};
use repere_core::RecordKind;
use repere_core::document::{Author, RecordDoc};
use uuid::Uuid;

use super::{HubError, put_server_change};
use crate::storage::{StoredDocument, Tx};

/// The records that move with a young person: their own and their path.
pub fn moves_with_youth(kind: RecordKind) -> bool {
    matches!(
        kind,
        RecordKind::Youth | RecordKind::Action | RecordKind::Outcome
    )
}

/// Moves a young person and their actions and outcomes to `to_team`, inside the caller's
/// transaction: each gets `team_id` written by `author` (superseding any concurrent value)
/// at the next log position, and a departure from its old team. Returns the ids moved.
pub(crate) fn move_youth(
    tx: &mut dyn Tx,
    youth_id: Uuid,
    to_team: Uuid,
    author: Author,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, HubError> {
    let youth = tx
        .document(youth_id)?
        .filter(|d| d.kind == RecordKind::Youth)
        .ok_or(HubError::NotFound {
            what: "young person",
            id: youth_id,
        })?;
    let from_team = youth.team_id;
    let mut records = vec![youth];
    records.extend(
        tx.records_of_youth(youth_id)?
            .into_iter()
            .filter(|d| moves_with_youth(d.kind) && d.team_id == from_team),
    );
    let mut moved = Vec::with_capacity(records.len());
    for stored in records {
        move_one(tx, &stored, to_team, author, now)?;
        moved.push(stored.id);
    }
    Ok(moved)
}

fn move_one(
    tx: &mut dyn Tx,
    stored: &StoredDocument,
    to_team: Uuid,
    author: Author,
    now: DateTime<Utc>,
) -> Result<(), HubError> {
    let internal = |e: repere_core::Error| HubError::Internal(format!("transfer: {e}"));
    let mut doc = RecordDoc::load(stored.kind, stored.id, &stored.doc, author).map_err(internal)?;
    doc.overwrite_scalar("team_id", &serde_json::json!(to_team.to_string()), now)
        .map_err(internal)?;
    if doc.read_record().map_err(internal)?.team_id() != to_team {
        return Err(HubError::Internal(format!(
            "transfer: record {} does not read as moved",
            stored.id
        )));
    }
    put_server_change(tx, &mut doc, to_team, stored.generation, now)?;
    tx.put_departure(stored.id, stored.team_id, now)?;
    // Back to a team it had left: that team pulls it again as a changed record.
    tx.delete_departure(stored.id, to_team)?;
    Ok(())
}
