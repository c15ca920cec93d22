//! The erasure workflow of the coordinators' pages (issue 10, point 5): a coordinator asks
//! for an erasure (a young person, or a visit, action or outcome) with a reason; an
//! administrator or the data-protection officer — never the person who asked — approves
//! or refuses it; an approved request is executed at once (the erasure's cascade). Each
//! request has a receipt: when it was executed and which of the team's tablets have applied
//! it. A tablet's cursor is its report: it stores the cursor in the same transaction as the
//! erasures it pulled, so a cursor at or past the tombstone's position means done.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use repere_core::RecordKind;
use repere_core::records::Youth;
use uuid::Uuid;

use super::audit::{self, Audit};
use super::view::decode;
use super::{Coordinator, Workspace, short_id};
use crate::hub::{ErasureReason, HubError};
use crate::storage::{ErasureDecision, ErasureExecuted, ErasureRequest, ReadTx, Role};

/// A request as the pages list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureItem {
    pub request: ErasureRequest,
    pub reason: ErasureReason,
    pub team_name: String,
    pub requested_by: String,
    pub decided_by: Option<String>,
    /// What the record is, in words; a young person's name only while not erased.
    pub label: String,
}

/// Where one of the team's tablets stands with an executed erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TabletState {
    /// Its last sync applied it.
    Confirmed { at: Option<DateTime<Utc>> },
    /// Not synced since (or never): its copy is still there.
    Waiting { last_sync: Option<DateTime<Utc>> },
    /// Revoked: it will not sync again (its copy stays on it unless it is wiped).
    Revoked { at: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabletReceipt {
    pub label: String,
    pub state: TabletState,
}

/// A request's receipt page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReceipt {
    pub item: ErasureItem,
    /// Executed only: every tablet the team has had.
    pub tablets: Vec<TabletReceipt>,
    /// Whether the signed-in user may decide it now.
    pub may_decide: bool,
}

/// Administrators (the data-protection officer among them) decide erasures.
pub fn is_approver(who: &Coordinator) -> bool {
    who.user.role == Role::Admin
}

impl Workspace {
    /// Asks for a record's erasure. A record already waiting for a decision keeps its one
    /// request (returned). Kinds: young person, visit, action, outcome.
    pub fn request_erasure(
        &self,
        who: &Coordinator,
        record_id: Uuid,
        reason: ErasureReason,
    ) -> Result<Uuid, HubError> {
        let now = self.now();
        let id = self
            .hub()
            .storage()
            .write_with(|tx| -> Result<Uuid, HubError> {
                let stored = tx
                    .document(record_id)?
                    .filter(|d| who.in_scope(d.team_id))
                    .ok_or(HubError::NotFound {
                        what: "record",
                        id: record_id,
                    })?;
                if matches!(stored.kind, RecordKind::ReviewTask | RecordKind::Tour) {
                    return Err(HubError::BadInput(
                        "Seules les fiches jeunes, visites, actions et solutions s'effacent ici."
                            .into(),
                    ));
                }
                let pending = tx
                    .erasure_requests(who.organisation.id)?
                    .into_iter()
                    .find(|q| q.record_id == record_id && q.decision.is_none());
                if let Some(pending) = pending {
                    return Ok(pending.id);
                }
                let request = ErasureRequest {
                    id: Uuid::now_v7(),
                    organisation_id: who.organisation.id,
                    team_id: stored.team_id,
                    record_id,
                    record_kind: stored.kind,
                    reason: reason.as_str().to_string(),
                    requested_by: who.user.id,
                    requested_at: now,
                    decision: None,
                    executed: None,
                };
                tx.insert_erasure_request(&request)?;
                tx.insert_audit(
                    &Audit::by(
                        who,
                        audit::ERASURE_REQUESTED,
                        Some(record_id),
                        format!(
                            "demande {} ; motif : {}",
                            short_id(request.id),
                            reason.label()
                        ),
                    )
                    .entry(now),
                )?;
                Ok(request.id)
            })?;
        tracing::info!(request = %id, record = %record_id, "erasure requested");
        Ok(id)
    }

    /// Approves (and executes) or refuses a request: an administrator of the organisation,
    /// not the person who asked.
    pub fn decide_erasure(
        &self,
        who: &Coordinator,
        request_id: Uuid,
        approve: bool,
    ) -> Result<(), HubError> {
        let request = self
            .hub()
            .storage()
            .read_with(|tx| tx.erasure_request(request_id))?
            .filter(|q| q.organisation_id == who.organisation.id)
            .ok_or(HubError::NotFound {
                what: "erasure request",
                id: request_id,
            })?;
        if !is_approver(who) {
            return Err(HubError::BadInput(
                "Seul un administrateur (le délégué à la protection des données, par exemple) \
                 décide d'un effacement."
                    .into(),
            ));
        }
        if request.requested_by == who.user.id {
            return Err(HubError::BadInput(
                "Une autre personne que celle qui l'a demandé doit décider de cet effacement."
                    .into(),
            ));
        }
        if request.decision.is_some() {
            return Err(HubError::BadInput("Cette demande est déjà décidée.".into()));
        }
        let reason = ErasureReason::parse(&request.reason).unwrap_or(ErasureReason::Request);
        // Erased first: erasing again is harmless, so a failure after it only needs the
        // decision taken again.
        let executed = if approve {
            let erasure = self.hub().erase_because(request.record_id, reason)?;
            Some(ErasureExecuted {
                at: self.now(),
                tombstone_seq: erasure.tombstone.seq,
                also_erased: erasure.also_erased.len() as u32,
                removed_from: erasure.removed_from.len() as u32,
            })
        } else {
            None
        };
        let now = self.now();
        self.hub()
            .storage()
            .write_with(|tx| -> Result<(), HubError> {
                tx.decide_erasure_request(
                    request_id,
                    &ErasureDecision {
                        approved: approve,
                        by: who.user.id,
                        at: now,
                    },
                )?;
                if let Some(executed) = &executed {
                    tx.executed_erasure_request(request_id, executed)?;
                }
                tx.insert_audit(
                    &Audit::by(
                        who,
                        if approve {
                            audit::ERASURE_APPROVED
                        } else {
                            audit::ERASURE_REFUSED
                        },
                        Some(request.record_id),
                        format!("demande {}", short_id(request_id)),
                    )
                    .entry(now),
                )?;
                Ok(())
            })?;
        self.refresh_view()?;
        tracing::info!(request = %request_id, approve, "erasure request decided");
        Ok(())
    }

    /// The organisation's requests, newest first.
    pub fn erasure_requests(&self, who: &Coordinator) -> Result<Vec<ErasureItem>, HubError> {
        self.hub().storage().read_with(|tx| -> Result<_, HubError> {
            let requests = tx.erasure_requests(who.organisation.id)?;
            let names = user_names(tx, who)?;
            requests
                .into_iter()
                .filter(|q| who.in_scope(q.team_id))
                .map(|q| item(tx, who, &names, q))
                .collect()
        })
    }

    /// A request's receipt; `None` if it is not the organisation's.
    pub fn erasure_receipt(
        &self,
        who: &Coordinator,
        request_id: Uuid,
    ) -> Result<Option<ErasureReceipt>, HubError> {
        self.hub().storage().read_with(|tx| -> Result<_, HubError> {
            let Some(request) = tx
                .erasure_request(request_id)?
                .filter(|q| q.organisation_id == who.organisation.id && who.in_scope(q.team_id))
            else {
                return Ok(None);
            };
            let tablets = match &request.executed {
                Some(executed) => tx
                    .devices(Some(request.team_id))?
                    .into_iter()
                    .map(|d| TabletReceipt {
                        state: match d.revoked_at {
                            Some(at) => TabletState::Revoked { at },
                            None if d.applied_seq >= executed.tombstone_seq => {
                                TabletState::Confirmed { at: d.last_sync_at }
                            }
                            None => TabletState::Waiting {
                                last_sync: d.last_sync_at,
                            },
                        },
                        label: d.label,
                    })
                    .collect(),
                None => Vec::new(),
            };
            let may_decide = request.decision.is_none()
                && is_approver(who)
                && request.requested_by != who.user.id;
            let names = user_names(tx, who)?;
            Ok(Some(ErasureReceipt {
                item: item(tx, who, &names, request)?,
                tablets,
                may_decide,
            }))
        })
    }
}

/// The organisation's users by id, for the names on requests (loaded once per page).
fn user_names(tx: &mut dyn ReadTx, who: &Coordinator) -> Result<HashMap<Uuid, String>, HubError> {
    Ok(tx
        .users()?
        .into_iter()
        .filter(|u| u.organisation_id == who.organisation.id)
        .map(|u| (u.id, u.name))
        .collect())
}

fn item(
    tx: &mut dyn ReadTx,
    who: &Coordinator,
    names: &HashMap<Uuid, String>,
    request: ErasureRequest,
) -> Result<ErasureItem, HubError> {
    let name_of = |id: Uuid| names.get(&id).cloned().unwrap_or_else(|| short_id(id));
    let kind = crate::coord::labels::record_kind(request.record_kind);
    let label = match request.record_kind {
        RecordKind::Youth if request.executed.is_none() => tx
            .view_record(request.record_id)?
            .and_then(|v| decode::<Youth>(&v))
            .map_or_else(
                || kind.to_string(),
                |y| format!("{kind} : {}", y.display_name()),
            ),
        _ => format!("{kind} {}", short_id(request.record_id)),
    };
    Ok(ErasureItem {
        reason: ErasureReason::parse(&request.reason).unwrap_or(ErasureReason::Request),
        team_name: who.team_name(request.team_id),
        requested_by: name_of(request.requested_by),
        decided_by: request.decision.map(|d| name_of(d.by)),
        label,
        request,
    })
}
