//! The review actions on a visit: approve, flag (with a reason), ask the binôme for
//! information, close an answered question.
//!
//! A question is a `ReviewTask` record of the visit's team, written by the server as the
//! coordinator (actor: nil device id + the coordinator's user id) and stored like any
//! synced document, at the next log position: the team's tablets pull it at their next
//! sync, answer it there, and the answer comes back by the same sync. Closing it is an
//! ordinary edit of that document on top of the stored copy, so an answer that arrived in
//! the meantime is kept.

use repere_core::Communes;
use repere_core::document::{Author, RecordDoc, to_json_fields};
use repere_core::records::{Record, RecordKind, ReviewTask, ReviewTaskStatus, ValidationContext};
use uuid::Uuid;

use super::audit::{self, Audit};
use super::view::scoped_document;
use super::{Coordinator, Workspace, paris};
use crate::hub::{HubError, put_server_change};
use crate::storage::{Tx, VisitReview, VisitState};

pub const REASON_MAX_CHARS: usize = 1000;

fn not_found(id: Uuid) -> HubError {
    HubError::NotFound { what: "visit", id }
}

/// The coordinator as the author of what the server writes for them.
pub(crate) fn author(who: &Coordinator) -> Author {
    Author {
        device_id: Uuid::nil(),
        member_id: who.user.id,
    }
}

fn clean_text(text: &str, max: usize, what: &str) -> Result<String, HubError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(HubError::BadInput(format!("{what} est vide.")));
    }
    if text.chars().count() > max {
        return Err(HubError::BadInput(format!(
            "{what} dépasse {max} caractères."
        )));
    }
    Ok(text.replace("\r\n", "\n"))
}

fn scoped_contact(tx: &mut dyn Tx, who: &Coordinator, id: Uuid) -> Result<Uuid, HubError> {
    let stored = scoped_document(tx, who, RecordKind::Contact, id)?.ok_or(not_found(id))?;
    Ok(stored.team_id)
}

impl Workspace {
    fn decide(
        &self,
        who: &Coordinator,
        contact_id: Uuid,
        state: VisitState,
        reason: Option<String>,
        action: &'static str,
    ) -> Result<(), HubError> {
        let now = self.now();
        self.hub()
            .storage()
            .write_with(|tx| -> Result<(), HubError> {
                scoped_contact(tx, who, contact_id)?;
                tx.put_visit_review(&VisitReview {
                    contact_id,
                    state,
                    reason: reason.clone(),
                    user_id: who.user.id,
                    at: now,
                })?;
                tx.insert_audit(&Audit::by(who, action, Some(contact_id), "").entry(now))?;
                Ok(())
            })
    }

    /// Marks a visit approved.
    pub fn approve(&self, who: &Coordinator, contact_id: Uuid) -> Result<(), HubError> {
        self.decide(
            who,
            contact_id,
            VisitState::Approved,
            None,
            audit::APPROVE_VISIT,
        )
    }

    /// Flags a visit with a reason (kept with the decision, not in the audit log).
    pub fn flag(&self, who: &Coordinator, contact_id: Uuid, reason: &str) -> Result<(), HubError> {
        let reason = clean_text(reason, REASON_MAX_CHARS, "Le motif")?;
        self.decide(
            who,
            contact_id,
            VisitState::Flagged,
            Some(reason),
            audit::FLAG_VISIT,
        )
    }

    /// Asks the visit's binôme a question: a new `ReviewTask` document for the team's
    /// tablets. Returns its id.
    pub fn ask(
        &self,
        who: &Coordinator,
        contact_id: Uuid,
        question: &str,
    ) -> Result<Uuid, HubError> {
        let question = clean_text(question, 2000, "La question")?;
        let now = self.now();
        let ctx = ValidationContext {
            now,
            communes: Communes::global(),
        };
        let task_id = Uuid::now_v7();
        self.hub()
            .storage()
            .write_with(|tx| -> Result<(), HubError> {
                let team_id = scoped_contact(tx, who, contact_id)?;
                let task = ReviewTask {
                    team_id,
                    contact_id,
                    question: question.clone(),
                    asked_by: who.user.name.clone(),
                    // The coordinator's local time, as the tablets will show it.
                    asked_at: paris(now),
                    answer: String::new(),
                    answered_by: None,
                    answered_at: None,
                    status: ReviewTaskStatus::Open,
                };
                task.validate(&ctx)
                    .map_err(|e| HubError::BadInput(format!("Question refusée : {e}")))?;
                let internal =
                    |e: repere_core::Error| HubError::Internal(format!("review task: {e}"));
                let fields = to_json_fields(&task).map_err(internal)?;
                let mut doc =
                    RecordDoc::create(RecordKind::ReviewTask, task_id, author(who), &fields, now)
                        .map_err(internal)?;
                put_server_change(tx, &mut doc, team_id, 0, now)?;
                tx.put_visit_review(&VisitReview {
                    contact_id,
                    state: VisitState::Question,
                    reason: None,
                    user_id: who.user.id,
                    at: now,
                })?;
                tx.insert_audit(
                    &Audit::by(
                        who,
                        audit::ASK_QUESTION,
                        Some(contact_id),
                        format!("question {task_id}"),
                    )
                    .entry(now),
                )?;
                Ok(())
            })?;
        tracing::info!(task = %task_id, contact = %contact_id, "review question asked");
        self.refresh_view()?;
        Ok(task_id)
    }

    /// Closes a question (answered or not): an edit of its document, synced to the tablets.
    /// Returns the visit it was about.
    pub fn close_task(&self, who: &Coordinator, task_id: Uuid) -> Result<Uuid, HubError> {
        let now = self.now();
        let ctx = ValidationContext {
            now,
            communes: Communes::global(),
        };
        let contact_id = self
            .hub()
            .storage()
            .write_with(|tx| -> Result<Uuid, HubError> {
                let stored = scoped_document(tx, who, RecordKind::ReviewTask, task_id)?.ok_or(
                    HubError::NotFound {
                        what: "review task",
                        id: task_id,
                    },
                )?;
                let internal =
                    |e: repere_core::Error| HubError::Internal(format!("review task: {e}"));
                let mut doc = RecordDoc::load(stored.kind, stored.id, &stored.doc, author(who))
                    .map_err(internal)?;
                let old = doc.read_fields();
                let mut task: ReviewTask = doc.read().map_err(internal)?;
                if task.status == ReviewTaskStatus::Closed {
                    return Ok(task.contact_id);
                }
                task.status = ReviewTaskStatus::Closed;
                // A task closed before any answer keeps an empty answer: still valid.
                task.validate(&ctx)
                    .map_err(|e| HubError::BadInput(format!("Clôture refusée : {e}")))?;
                let new = to_json_fields(&task).map_err(internal)?;
                doc.update(&old, &new, now).map_err(internal)?;
                put_server_change(tx, &mut doc, stored.team_id, stored.generation, now)?;
                tx.insert_audit(
                    &Audit::by(
                        who,
                        audit::CLOSE_QUESTION,
                        Some(task.contact_id),
                        format!("question {task_id}"),
                    )
                    .entry(now),
                )?;
                Ok(task.contact_id)
            })?;
        self.refresh_view()?;
        Ok(contact_id)
    }
}
