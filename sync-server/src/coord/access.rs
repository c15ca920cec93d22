//! The right of access (GDPR art. 15; issue 10, point 7): everything the server holds about
//! one young person — their file, the visits, actions and outcomes about them, the
//! coordinators' questions about those visits, each with its history (who changed which
//! field when) — and who viewed, exported or acted on them, as a JSON file and a printable
//! page. A document with everything needs a second factor, and each one made is journaled.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use repere_core::document::{Author, JsonFields, RecordDoc};
use repere_core::{AnyRecord, RecordKind};
use serde_json::{Value, json};
use uuid::Uuid;

use super::audit::{self, Audit, action_label};
use super::{Coordinator, Workspace, accounts, short_id};
use crate::hub::HubError;
use crate::storage::{AuditEntry, ReadTx, StoredDocument, Team};

/// How many journal entries about the file are included (the newest).
const MAX_AUDIT: usize = 5_000;

/// One record of the file, with its history.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRecord {
    pub kind: RecordKind,
    pub id: Uuid,
    pub fields: JsonFields,
    /// Times the record was rewritten by a rectification (its history starts there).
    pub generation: u32,
    pub history: Vec<HistoryLine>,
}

/// One change of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLine {
    /// The writing device's clock (informative).
    pub written_at: Option<DateTime<Utc>>,
    /// Who wrote it, in words: a coordinator by name, a team member (as the tablet declares
    /// it) with the tablet the server checked, or the server.
    pub author: String,
    pub fields: Vec<String>,
}

/// One journal entry about the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    pub entry: AuditEntry,
    pub user_name: Option<String>,
}

/// Everything held about one young person.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessFile {
    pub youth_id: Uuid,
    pub team: Team,
    pub organisation: String,
    pub made_at: DateTime<Utc>,
    pub made_by: String,
    /// The young person first, then visits, actions, outcomes and questions.
    pub records: Vec<AccessRecord>,
    /// Newest first.
    pub audit: Vec<AuditLine>,
}

/// The form a document is made in, for the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessFormat {
    Page,
    Json,
}

impl Workspace {
    /// The file of one young person of the coordinator's organisation; `None` when unknown
    /// or out of scope. Refused (`Unauthorized`, journaled) without a second factor.
    pub fn access_file(
        &self,
        who: &Coordinator,
        youth_id: Uuid,
        format: AccessFormat,
    ) -> Result<Option<AccessFile>, HubError> {
        if !accounts::may_export_names(who) {
            self.record(Audit::by(
                who,
                audit::ACCESS_FILE_REFUSED,
                Some(youth_id),
                "double authentification non activée",
            ))?;
            return Err(HubError::Unauthorized);
        }
        let now = self.now();
        let file = self
            .hub()
            .storage()
            .read_with(|tx| -> Result<_, HubError> {
                let Some(youth) = tx.document(youth_id)? else {
                    return Ok(None);
                };
                if youth.kind != RecordKind::Youth || !who.in_scope(youth.team_id) {
                    return Ok(None);
                }
                let Some(team) = who.team(youth.team_id).cloned() else {
                    return Ok(None);
                };
                let names = Names::load(tx, who, youth.team_id)?;
                let mut linked = tx.records_of_youth(youth_id)?;
                linked.sort_by_key(|d| (order(d.kind), d.id));
                let mut questions = Vec::new();
                for d in &linked {
                    if d.kind == RecordKind::Contact {
                        for task in tx.review_tasks_of(d.id)? {
                            questions.extend(tx.document(task)?);
                        }
                    }
                }
                let mut records = vec![access_record(&youth, &names)?];
                for d in linked.iter().chain(&questions) {
                    records.push(access_record(d, &names)?);
                }
                let targets: BTreeSet<Uuid> = records.iter().map(|r| r.id).collect();
                let mut audit = Vec::new();
                for target in &targets {
                    let (entries, _) =
                        tx.audit_entries(who.organisation.id, Some(*target), 0, MAX_AUDIT)?;
                    audit.extend(entries.into_iter().map(|entry| AuditLine {
                        user_name: entry.user_id.and_then(|u| names.users.get(&u).cloned()),
                        entry,
                    }));
                }
                audit.sort_by(|a, b| {
                    b.entry
                        .at
                        .cmp(&a.entry.at)
                        .then(b.entry.id.cmp(&a.entry.id))
                });
                audit.truncate(MAX_AUDIT);
                Ok(Some(AccessFile {
                    youth_id,
                    team,
                    organisation: who.organisation.name.clone(),
                    made_at: now,
                    made_by: who.user.name.clone(),
                    records,
                    audit,
                }))
            })?;
        if let Some(file) = &file {
            self.record(Audit::by(
                who,
                audit::ACCESS_FILE,
                Some(youth_id),
                format!(
                    "{} : {} fiche(s)",
                    match format {
                        AccessFormat::Page => "page imprimable",
                        AccessFormat::Json => "fichier JSON",
                    },
                    file.records.len()
                ),
            ))?;
            tracing::info!(user = %who.user.id, youth = %youth_id, "access file made");
        }
        Ok(file)
    }
}

fn order(kind: RecordKind) -> u8 {
    match kind {
        RecordKind::Youth => 0,
        RecordKind::Contact => 1,
        RecordKind::Action => 2,
        RecordKind::Outcome => 3,
        RecordKind::ReviewTask => 4,
        RecordKind::Tour => 5,
    }
}

/// Who the ids of a history are.
struct Names {
    users: HashMap<Uuid, String>,
    /// The team's roster (members as the tablets name them).
    members: HashMap<Uuid, String>,
    tablets: HashMap<Uuid, String>,
}

impl Names {
    fn load(tx: &mut dyn ReadTx, who: &Coordinator, team: Uuid) -> Result<Names, HubError> {
        Ok(Names {
            users: tx
                .users()?
                .into_iter()
                .filter(|u| u.organisation_id == who.organisation.id)
                .map(|u| (u.id, u.name))
                .collect(),
            members: tx
                .team_members(team)?
                .into_iter()
                .map(|m| (m.id, m.display_name))
                .collect(),
            tablets: tx
                .devices(Some(team))?
                .into_iter()
                .filter_map(|d| Some((d.writer?, d.label)))
                .collect(),
        })
    }

    fn author(&self, author: Option<&Author>) -> String {
        let Some(a) = author else {
            return "inconnu".to_string();
        };
        let member = match (self.users.get(&a.member_id), self.members.get(&a.member_id)) {
            (Some(name), _) => format!("{name} (coordination)"),
            (None, Some(name)) => format!("{name} (membre de l'équipe, déclaré par la tablette)"),
            (None, None) => format!("membre {} (déclaré par la tablette)", short_id(a.member_id)),
        };
        if a.device_id.is_nil() {
            if self.users.contains_key(&a.member_id) {
                member
            } else {
                "serveur".to_string()
            }
        } else {
            let tablet = self.tablets.get(&a.device_id).map_or_else(
                || format!("tablette {}", short_id(a.device_id)),
                |l| format!("tablette « {l} »"),
            );
            format!("{member}, {tablet}")
        }
    }
}

fn access_record(stored: &StoredDocument, names: &Names) -> Result<AccessRecord, HubError> {
    let reader = Author {
        device_id: Uuid::nil(),
        member_id: Uuid::nil(),
    };
    let mut doc = RecordDoc::load(stored.kind, stored.id, &stored.doc, reader)
        .map_err(|e| HubError::Internal(format!("stored record unreadable: {e}")))?;
    let history = doc
        .history()
        .into_iter()
        .map(|h| HistoryLine {
            written_at: h.written_at,
            author: names.author(h.author.as_ref()),
            fields: h.fields,
        })
        .collect();
    Ok(AccessRecord {
        kind: stored.kind,
        id: stored.id,
        fields: doc.read_fields(),
        generation: stored.generation,
        history,
    })
}

impl AccessFile {
    /// The JSON file: the same content as the page, for a machine.
    pub fn to_json(&self) -> Value {
        json!({
            "document": "Droit d'accès (RGPD, article 15) : données détenues sur une personne",
            "youth_id": self.youth_id,
            "organisation": self.organisation,
            "team": self.team.name,
            "made_at": self.made_at.to_rfc3339(),
            "made_by": self.made_by,
            "records": self.records.iter().map(|r| json!({
                "kind": r.kind.as_str(),
                "id": r.id,
                "generation": r.generation,
                "fields": Value::Object(r.fields.clone()),
                "history": r.history.iter().map(|h| json!({
                    "written_at": h.written_at.map(|t| t.to_rfc3339()),
                    "author": h.author,
                    "fields": h.fields,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "journal": self.audit.iter().map(|a| json!({
                "at": a.entry.at.to_rfc3339(),
                "user": a.user_name,
                "action": a.entry.action,
                "label": action_label(&a.entry.action),
                "record": a.entry.target_id,
                "detail": a.entry.detail,
            })).collect::<Vec<_>>(),
        })
    }
}

/// The record read as the kind it is (for the page's French labels).
pub fn read(record: &AccessRecord) -> Option<AnyRecord> {
    AnyRecord::from_fields(record.kind, record.fields.clone()).ok()
}
