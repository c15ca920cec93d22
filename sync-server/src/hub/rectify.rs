//! Rectification without history (DESIGN decision 14; issue 10, point 4): a record is
//! rewritten as a new generation, one change by the server holding only its current values
//! (with the rectified ones), so a removed flag or a redacted note leaves no trace in its
//! history. Tablets replace their copy (protocol 4) or erase it (older apps); a push built
//! on an older generation is refused; the old bytes go as an erasure's do.

use chrono::{DateTime, Utc};
use repere_core::document::{JsonFields, RecordDoc};
use repere_core::records::ValidationContext;
use repere_core::{AnyRecord, Communes, RecordKind};
use uuid::Uuid;

use super::{Hub, HubError, load_stored, put_server_change, server_author};
use crate::storage::register::Rewrite;
use crate::storage::{AuditEntry, StoredDocument, Tx};

/// What one rectification did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rectified {
    pub id: Uuid,
    pub kind: RecordKind,
    /// The record's new generation (1 after its first rectification).
    pub generation: u32,
    /// The fields whose value changed (none: only the history was dropped).
    pub changed: Vec<&'static str>,
}

impl Hub {
    /// Rewrites a record as a new generation: its current fields with `changes` applied
    /// (a field set to JSON `null` is emptied), validated as any push is. With no changes,
    /// only the history goes (after an edit removed a flag, say). One transaction, one
    /// journal entry (`by`: the coordinator, or `None` for an administrator's command).
    pub fn rectify(
        &self,
        id: Uuid,
        changes: &JsonFields,
        by: Option<Uuid>,
    ) -> Result<Rectified, HubError> {
        let now = self.now();
        let rectified = self.storage().write_with(|tx| -> Result<_, HubError> {
            if tx.tombstone(id)?.is_some() {
                return Err(HubError::BadInput(format!("record {id} was erased")));
            }
            let stored = tx
                .document(id)?
                .ok_or(HubError::NotFound { what: "record", id })?;
            let current = load_stored(&stored)?.read_fields();
            let fields = apply_changes(stored.kind, &current, changes)?;
            let record = checked(stored.kind, &fields, now)?;
            if record.team_id() != stored.team_id {
                return Err(HubError::BadInput(
                    "a rectification cannot move a record to another team".into(),
                ));
            }
            let changed = changed_names(stored.kind, &current, &fields);
            let generation = rewrite(tx, &stored, &fields, stored.generation + 1, now)?;
            if let Some(register) = &self.register {
                register.append_rewrites(&[Rewrite {
                    id,
                    team_id: stored.team_id,
                    at: now,
                    generation,
                    fields: changed.iter().map(|f| f.to_string()).collect(),
                }])?;
            }
            let organisation_id = tx.team(stored.team_id)?.map(|t| t.organisation_id);
            tx.insert_audit(&AuditEntry {
                id: 0,
                at: now,
                organisation_id,
                user_id: by,
                action: crate::coord::audit::RECTIFY_RECORD.to_string(),
                target_id: Some(id),
                detail: format!(
                    "{} : génération {generation}, champs : {}",
                    stored.kind,
                    if changed.is_empty() {
                        "aucun (historique seul)".to_string()
                    } else {
                        changed.join(", ")
                    }
                ),
            })?;
            Ok(Rectified {
                id,
                kind: stored.kind,
                generation,
                changed,
            })
        })?;
        self.storage().scrub()?;
        tracing::info!(
            record = %id, generation = rectified.generation, fields = rectified.changed.len(),
            "record rectified"
        );
        Ok(rectified)
    }
}

/// Stores `fields` as `generation` of a stored record: a new document whose only change is
/// the server's, at the next log position. Returns the generation.
pub(super) fn rewrite(
    tx: &mut dyn Tx,
    stored: &StoredDocument,
    fields: &JsonFields,
    generation: u32,
    now: DateTime<Utc>,
) -> Result<u32, HubError> {
    let mut doc = RecordDoc::create(stored.kind, stored.id, server_author(), fields, now)
        .map_err(|e| HubError::Internal(format!("rewriting a record: {e}")))?;
    put_server_change(tx, &mut doc, stored.team_id, generation, now)?;
    // The coordinators' view still holds the old values: it is rebuilt from the new ones.
    tx.delete_view(stored.id)?;
    Ok(generation)
}

fn apply_changes(
    kind: RecordKind,
    current: &JsonFields,
    changes: &JsonFields,
) -> Result<JsonFields, HubError> {
    let mut fields = current.clone();
    for (name, value) in changes {
        if !kind.schema().iter().any(|(n, _)| n == name) {
            return Err(HubError::BadInput(format!(
                "a {kind} record has no field {}",
                name.chars().take(64).collect::<String>()
            )));
        }
        if value.is_null() {
            fields.remove(name);
        } else {
            fields.insert(name.clone(), value.clone());
        }
    }
    Ok(fields)
}

/// The record the fields make, valid as a push must be (problems named, never values).
fn checked(
    kind: RecordKind,
    fields: &JsonFields,
    now: DateTime<Utc>,
) -> Result<AnyRecord, HubError> {
    let record = AnyRecord::from_fields(kind, fields.clone())
        .map_err(|_| HubError::BadInput(format!("the fields cannot be read as a {kind} record")))?;
    let ctx = ValidationContext {
        now,
        communes: Communes::global(),
    };
    record
        .validate(&ctx)
        .map_err(|e| HubError::BadInput(format!("rectification refused: {e}")))?;
    Ok(record)
}

fn changed_names(kind: RecordKind, old: &JsonFields, new: &JsonFields) -> Vec<&'static str> {
    let value = |f: &JsonFields, n: &str| f.get(n).filter(|v| !v.is_null()).cloned();
    kind.schema()
        .iter()
        .filter(|(n, _)| value(old, n) != value(new, n))
        .map(|(n, _)| *n)
        .collect()
}

/// After a restore, a rectification made since the backup, applied again to the restored
/// (older) record. The register keeps field names, never values, so the fields it names
/// are emptied, except that from a set of ids only the records erased since are removed
/// (a young person taken out of a group visit). Written even if the record is then
/// incomplete: an erased value never comes back; the team completes the record.
pub(super) fn rewrite_again(
    tx: &mut dyn Tx,
    stored: &StoredDocument,
    entry: &Rewrite,
    now: DateTime<Utc>,
) -> Result<(), HubError> {
    let mut fields = load_stored(stored)?.read_fields();
    for name in &entry.fields {
        let erased_ids = match fields.get(name) {
            Some(serde_json::Value::Array(items)) if !items.is_empty() => {
                let ids: Vec<Option<Uuid>> = items
                    .iter()
                    .map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                    .collect();
                if ids.iter().all(Option::is_some) {
                    let mut kept = Vec::new();
                    for id in ids.into_iter().flatten() {
                        if tx.tombstone(id)?.is_none() {
                            kept.push(serde_json::Value::String(id.to_string()));
                        }
                    }
                    Some(kept)
                } else {
                    None
                }
            }
            _ => None,
        };
        match erased_ids {
            Some(kept) => fields.insert(name.clone(), serde_json::Value::Array(kept)),
            None => fields.remove(name),
        };
    }
    rewrite(tx, stored, &fields, entry.generation, now)?;
    tracing::warn!(record = %stored.id, generation = entry.generation, "rectification applied again after a restore");
    Ok(())
}
