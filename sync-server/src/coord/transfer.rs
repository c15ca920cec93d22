//! Transferring a young person to another team (issue 12): asked on the pages by a
//! coordinator of the young person's team, accepted or refused by a coordinator of the
//! destination team (which may be another organisation's), cancelled by either side while
//! it waits. On acceptance, in one transaction, the young person and their path (actions,
//! outcomes) change team (`hub::transfer`); their visits stay with the team that made
//! them. See docs/sync-protocol.md, "Transfers".

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use repere_core::RecordKind;
use repere_core::document::{Author, RecordDoc};
use repere_core::records::Youth;
use uuid::Uuid;

use super::audit::{self, Audit};
use super::review::author;
use super::{Coordinator, Workspace, short_id};
use crate::hub::{HubError, transfer};
use crate::storage::{AuditEntry, ReadTx, Transfer, TransferState, Tx};

/// A transfer as the pages list it, for one coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferItem {
    pub transfer: Transfer,
    /// The young person's display name while the transfer waits, or for the team that
    /// holds them; else only their short id.
    pub youth_label: String,
    pub from_team: String,
    pub to_team: String,
    /// The coordinator is on the destination's side: they may accept or refuse it.
    pub incoming: bool,
}

impl TransferItem {
    pub fn pending(&self) -> bool {
        self.transfer.state == TransferState::Pending
    }
}

/// A team a young person may be transferred to, named with its organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub team_id: Uuid,
    pub label: String,
}

fn not_found(id: Uuid) -> HubError {
    HubError::NotFound {
        what: "transfer",
        id,
    }
}

fn youth_of(tx: &mut dyn ReadTx, youth_id: Uuid) -> Result<Option<Youth>, HubError> {
    let Some(stored) = tx
        .document(youth_id)?
        .filter(|d| d.kind == RecordKind::Youth)
    else {
        return Ok(None);
    };
    let nobody = Author {
        device_id: Uuid::nil(),
        member_id: Uuid::nil(),
    };
    Ok(RecordDoc::load(stored.kind, stored.id, &stored.doc, nobody)
        .ok()
        .and_then(|doc| doc.read::<Youth>().ok()))
}

/// A young person's display name, if their file is readable.
pub(crate) fn youth_name(tx: &mut dyn ReadTx, youth_id: Uuid) -> Result<Option<String>, HubError> {
    Ok(youth_of(tx, youth_id)?.map(|y| y.display_name()))
}

/// One journal row in each organisation concerned (ids only), signed by `who`.
fn audit_both_sides(
    tx: &mut dyn Tx,
    who: &Coordinator,
    action: &'static str,
    t: &Transfer,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<(), HubError> {
    let mut organisations = BTreeSet::new();
    for team in [t.from_team, t.to_team] {
        if let Some(team) = tx.team(team)? {
            organisations.insert(team.organisation_id);
        }
    }
    let detail = format!(
        "transfert {} : équipe {} vers équipe {}{detail}",
        short_id(t.id),
        short_id(t.from_team),
        short_id(t.to_team)
    );
    for organisation_id in organisations {
        let mut entry: AuditEntry = Audit::by(who, action, Some(t.youth_id), &detail).entry(now);
        entry.organisation_id = Some(organisation_id);
        tx.insert_audit(&entry)?;
    }
    Ok(())
}

impl Workspace {
    /// What the request form shows: the young person's name and the teams they may go
    /// to, every team of the server but their own (moving to another canton may mean
    /// another organisation), by team and organisation name. `None` if the young person
    /// is not in the coordinator's scope.
    pub fn transfer_form(
        &self,
        who: &Coordinator,
        youth_id: Uuid,
    ) -> Result<Option<(String, Vec<Destination>)>, HubError> {
        self.hub().storage().read_with(|tx| -> Result<_, HubError> {
            let Some(current) = tx
                .document(youth_id)?
                .filter(|d| d.kind == RecordKind::Youth && who.in_scope(d.team_id))
                .map(|d| d.team_id)
            else {
                return Ok(None);
            };
            let name = youth_of(tx, youth_id)?.map_or_else(
                || format!("Jeune {}", short_id(youth_id)),
                |y| y.display_name(),
            );
            let organisations = tx.organisations()?;
            let org_name = |id: Uuid| {
                organisations
                    .iter()
                    .find(|o| o.id == id)
                    .map_or_else(String::new, |o| o.name.clone())
            };
            let destinations = tx
                .teams()?
                .into_iter()
                .filter(|t| t.id != current)
                .map(|t| Destination {
                    team_id: t.id,
                    label: format!("{} — {}", org_name(t.organisation_id), t.name),
                })
                .collect();
            Ok(Some((name, destinations)))
        })
    }

    /// Asks for a young person of the coordinator's scope to go to `to_team`. A young
    /// person already waiting for a transfer keeps that one request (returned).
    pub fn request_transfer(
        &self,
        who: &Coordinator,
        youth_id: Uuid,
        to_team: Uuid,
    ) -> Result<Uuid, HubError> {
        let now = self.now();
        let id = self
            .hub()
            .storage()
            .write_with(|tx| -> Result<Uuid, HubError> {
                let stored = tx
                    .document(youth_id)?
                    .filter(|d| d.kind == RecordKind::Youth && who.in_scope(d.team_id))
                    .ok_or(HubError::NotFound {
                        what: "young person",
                        id: youth_id,
                    })?;
                if tx.team(to_team)?.is_none() {
                    return Err(HubError::BadInput(
                        "L'équipe d'arrivée n'existe pas : choisissez-la dans la liste.".into(),
                    ));
                }
                if to_team == stored.team_id {
                    return Err(HubError::BadInput(
                        "Ce jeune est déjà suivi par cette équipe.".into(),
                    ));
                }
                let pending = tx
                    .transfers_of(&[stored.team_id])?
                    .into_iter()
                    .find(|t| t.youth_id == youth_id && t.state == TransferState::Pending);
                if let Some(pending) = pending {
                    return Ok(pending.id);
                }
                let t = Transfer {
                    id: Uuid::now_v7(),
                    youth_id,
                    from_team: stored.team_id,
                    to_team,
                    requested_by: who.user.id,
                    requested_at: now,
                    state: TransferState::Pending,
                    decided_by: None,
                    decided_at: None,
                };
                tx.insert_transfer(&t)?;
                audit_both_sides(tx, who, audit::TRANSFER_REQUESTED, &t, "", now)?;
                Ok(t.id)
            })?;
        tracing::info!(transfer = %id, record = %youth_id, "transfer requested");
        Ok(id)
    }

    /// The transfers from or to the coordinator's teams, newest first.
    pub fn transfers(&self, who: &Coordinator) -> Result<Vec<TransferItem>, HubError> {
        self.hub().storage().read_with(|tx| -> Result<_, HubError> {
            let transfers = tx.transfers_of(&who.team_ids())?;
            transfers
                .into_iter()
                .map(|t| transfer_item(tx, who, t))
                .collect()
        })
    }

    /// One transfer; `None` if neither of its teams is the coordinator's.
    pub fn transfer_item(
        &self,
        who: &Coordinator,
        id: Uuid,
    ) -> Result<Option<TransferItem>, HubError> {
        self.hub().storage().read_with(|tx| -> Result<_, HubError> {
            match visible(tx, who, id)? {
                Some(t) => transfer_item(tx, who, t).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Accepts a transfer to one of the coordinator's teams: the young person, their
    /// actions and their outcomes change team in this transaction. Returns the ids moved.
    pub fn accept_transfer(&self, who: &Coordinator, id: Uuid) -> Result<Vec<Uuid>, HubError> {
        let now = self.now();
        let moved = self
            .hub()
            .storage()
            .write_with(|tx| -> Result<_, HubError> {
                let t = visible(tx, who, id)?.ok_or_else(|| not_found(id))?;
                decider(who, &t)?;
                let still_there = tx
                    .document(t.youth_id)?
                    .is_some_and(|d| d.team_id == t.from_team);
                if !still_there {
                    return Err(HubError::BadInput(
                        "Cette fiche n'est plus dans l'équipe de départ (effacée ou déjà \
                         transférée) : le transfert ne peut plus être accepté."
                            .into(),
                    ));
                }
                if erasure_waits(tx, &t)? {
                    return Err(HubError::BadInput(
                        "Une demande d'effacement attend pour ce jeune ou son parcours : elle \
                         doit être décidée avant le transfert."
                            .into(),
                    ));
                }
                if !tx.end_transfer(id, TransferState::Accepted, who.user.id, now)? {
                    return Err(no_longer_pending());
                }
                let moved = transfer::move_youth(tx, t.youth_id, t.to_team, author(who), now)?;
                let detail = format!(" ; {} fiche(s) déplacée(s)", moved.len());
                audit_both_sides(tx, who, audit::TRANSFER_ACCEPTED, &t, &detail, now)?;
                Ok(moved)
            })?;
        tracing::info!(transfer = %id, records = moved.len(), "transfer accepted");
        Ok(moved)
    }

    /// Refuses a transfer to one of the coordinator's teams.
    pub fn refuse_transfer(&self, who: &Coordinator, id: Uuid) -> Result<(), HubError> {
        self.end(who, id, TransferState::Refused)
    }

    /// Cancels a waiting transfer, from either side.
    pub fn cancel_transfer(&self, who: &Coordinator, id: Uuid) -> Result<(), HubError> {
        self.end(who, id, TransferState::Cancelled)
    }

    fn end(&self, who: &Coordinator, id: Uuid, state: TransferState) -> Result<(), HubError> {
        let now = self.now();
        self.hub()
            .storage()
            .write_with(|tx| -> Result<(), HubError> {
                let t = visible(tx, who, id)?.ok_or_else(|| not_found(id))?;
                if state == TransferState::Refused {
                    decider(who, &t)?;
                }
                if !tx.end_transfer(id, state, who.user.id, now)? {
                    return Err(no_longer_pending());
                }
                let action = match state {
                    TransferState::Refused => audit::TRANSFER_REFUSED,
                    _ => audit::TRANSFER_CANCELLED,
                };
                audit_both_sides(tx, who, action, &t, "", now)
            })?;
        tracing::info!(transfer = %id, state = state.as_str(), "transfer ended");
        Ok(())
    }
}

/// The transfer if one of its teams is the coordinator's: a third team's coordinator is
/// answered as for an unknown id.
fn visible(tx: &mut dyn ReadTx, who: &Coordinator, id: Uuid) -> Result<Option<Transfer>, HubError> {
    Ok(tx
        .transfer(id)?
        .filter(|t| who.in_scope(t.from_team) || who.in_scope(t.to_team)))
}

/// Whether the source organisation waits to decide the erasure of the young person or of
/// a record that would move with them: decided after the move, it would erase another
/// organisation's record.
fn erasure_waits(tx: &mut dyn Tx, t: &Transfer) -> Result<bool, HubError> {
    let Some(team) = tx.team(t.from_team)? else {
        return Ok(false);
    };
    let mut moving = vec![t.youth_id];
    moving.extend(
        tx.records_of_youth(t.youth_id)?
            .into_iter()
            .filter(|d| transfer::moves_with_youth(d.kind))
            .map(|d| d.id),
    );
    Ok(tx
        .erasure_requests(team.organisation_id)?
        .iter()
        .any(|q| q.decision.is_none() && moving.contains(&q.record_id)))
}

/// Only the destination's side accepts or refuses.
fn decider(who: &Coordinator, t: &Transfer) -> Result<(), HubError> {
    if who.in_scope(t.to_team) {
        Ok(())
    } else {
        Err(HubError::BadInput(
            "Seule la coordination de l'équipe d'arrivée accepte ou refuse ce transfert.".into(),
        ))
    }
}

fn no_longer_pending() -> HubError {
    HubError::BadInput("Ce transfert n'est plus en attente.".into())
}

fn transfer_item(
    tx: &mut dyn ReadTx,
    who: &Coordinator,
    t: Transfer,
) -> Result<TransferItem, HubError> {
    let team_name = |tx: &mut dyn ReadTx, id: Uuid| -> Result<String, HubError> {
        Ok(tx
            .team(id)?
            .map_or_else(|| "équipe inconnue".to_string(), |t| t.name))
    };
    let incoming = who.in_scope(t.to_team);
    // Both sides see whom it is about while it waits (the destination must know whom it
    // accepts); afterwards only the team that holds the young person does.
    let holds = tx
        .document(t.youth_id)?
        .is_some_and(|d| who.in_scope(d.team_id));
    let name = if t.state == TransferState::Pending || holds {
        youth_of(tx, t.youth_id)?.map(|y| y.display_name())
    } else {
        None
    };
    Ok(TransferItem {
        youth_label: name.unwrap_or_else(|| format!("Jeune {}", short_id(t.youth_id))),
        from_team: team_name(tx, t.from_team)?,
        to_team: team_name(tx, t.to_team)?,
        incoming,
        transfer: t,
    })
}
