//! The audit log: who signed in, looked at a visit or a young person's file, took a review
//! action or exported data, and when. Entries hold ids and fixed words only: never a name,
//! a note, a question or a typed login.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::view::Paged;
use super::{Coordinator, PAGE_SIZE, Workspace};
use crate::hub::HubError;
use crate::storage::{AuditEntry, User};

pub const LOGIN_SUCCESS: &str = "login_success";
pub const LOGIN_FAILURE: &str = "login_failure";
pub const LOGIN_RATE_LIMITED: &str = "login_rate_limited";
pub const LOGOUT: &str = "logout";
pub const VIEW_VISIT: &str = "view_visit";
pub const VIEW_YOUTH: &str = "view_youth";
pub const APPROVE_VISIT: &str = "approve_visit";
pub const ASK_QUESTION: &str = "ask_question";
pub const FLAG_VISIT: &str = "flag_visit";
pub const CLOSE_QUESTION: &str = "close_question";
pub const EXPORT_INDICATORS: &str = "export_indicators";
pub const EXPORT_YOUTH_PSEUDONYMISED: &str = "export_youth_pseudonymised";
pub const EXPORT_YOUTH_NAMED: &str = "export_youth_named";
pub const EXPORT_YOUTH_NAMED_REFUSED: &str = "export_youth_named_refused";
pub const SECOND_FACTOR_ENABLED: &str = "second_factor_enabled";
pub const SECOND_FACTOR_RESET: &str = "second_factor_reset";
pub const USER_DISABLED: &str = "user_disabled";
pub const USER_ENABLED: &str = "user_enabled";
pub const SESSIONS_REVOKED: &str = "sessions_revoked";
/// An erasure (by an administrator's command): the record's id and what went with it.
pub const ERASE_RECORD: &str = "erase_record";
/// A right-of-access document made (page or JSON): the young person's id and the count.
pub const ACCESS_FILE: &str = "access_file";
/// The erasure workflow: the record's id, and the request's short id (and reason).
pub const ERASURE_REQUESTED: &str = "erasure_requested";
pub const ERASURE_APPROVED: &str = "erasure_approved";
pub const ERASURE_REFUSED: &str = "erasure_refused";
pub const ACCESS_FILE_REFUSED: &str = "access_file_refused";
/// A rectification: the record's id, its new generation and the names of the fields changed.
pub const RECTIFY_RECORD: &str = "rectify_record";
/// A conflict resolved on the pages: the record's id, its kind and the field's name (never
/// a value).
pub const RESOLVE_CONFLICT: &str = "resolve_conflict";
/// Administration (the `admin` commands and the administration pages): the object's id
/// (organisation, team, user or tablet) and fixed words (a role, a wipe order, an
/// expiry), never a name, a login, a password or a code.
pub const ORGANISATION_CREATED: &str = "organisation_created";
pub const ORGANISATION_RENAMED: &str = "organisation_renamed";
pub const TEAM_CREATED: &str = "team_created";
pub const USER_CREATED: &str = "user_created";
pub const ROLE_CHANGED: &str = "role_changed";
pub const PASSWORD_SET: &str = "password_set";
pub const CODE_ISSUED: &str = "enrolment_code_issued";
pub const DEVICE_REVOKED: &str = "device_revoked";
/// Self-service: the user's own password changed, one of their sessions ended.
pub const PASSWORD_CHANGED: &str = "password_changed";
pub const SESSION_ENDED: &str = "session_ended";
/// A young person's transfer to another team: their id, the transfer's short id and the
/// two teams' short ids; written in both organisations' journals.
pub const TRANSFER_REQUESTED: &str = "transfer_requested";
pub const TRANSFER_ACCEPTED: &str = "transfer_accepted";
pub const TRANSFER_REFUSED: &str = "transfer_refused";
pub const TRANSFER_CANCELLED: &str = "transfer_cancelled";
/// Break-the-glass: the young person's id, the grant's short id, who reads (an account or
/// a tablet by short id), the holding team's short id and the minutes; written in the
/// reader's and the file's organisations' journals. Never the reason.
pub const BREAK_GLASS_GRANTED: &str = "break_glass_granted";
pub const BREAK_GLASS_VIEWED: &str = "break_glass_viewed";
pub const BREAK_GLASS_ENDED: &str = "break_glass_ended";

/// The French label of an action, for the journal page.
pub fn action_label(action: &str) -> &'static str {
    match action {
        LOGIN_SUCCESS => "Connexion",
        LOGIN_FAILURE => "Échec de connexion",
        LOGIN_RATE_LIMITED => "Connexion bloquée (trop de tentatives)",
        LOGOUT => "Déconnexion",
        VIEW_VISIT => "Consultation d'une visite",
        VIEW_YOUTH => "Consultation d'une fiche jeune",
        APPROVE_VISIT => "Visite approuvée",
        ASK_QUESTION => "Question posée au binôme",
        FLAG_VISIT => "Visite signalée",
        CLOSE_QUESTION => "Question close",
        EXPORT_INDICATORS => "Export des indicateurs",
        EXPORT_YOUTH_PSEUDONYMISED => "Export des jeunes (pseudonymisé)",
        EXPORT_YOUTH_NAMED => "Export des jeunes AVEC les noms",
        EXPORT_YOUTH_NAMED_REFUSED => {
            "Export avec les noms refusé (double authentification non activée)"
        }
        SECOND_FACTOR_ENABLED => "Double authentification activée",
        SECOND_FACTOR_RESET => "Double authentification supprimée (administrateur)",
        USER_DISABLED => "Compte désactivé (administrateur)",
        USER_ENABLED => "Compte réactivé (administrateur)",
        SESSIONS_REVOKED => "Sessions fermées (administrateur)",
        ERASE_RECORD => "Effacement d'une fiche (et des fiches liées)",
        RECTIFY_RECORD => "Rectification d'une fiche (historique effacé)",
        ACCESS_FILE => "Droit d'accès : document produit",
        RESOLVE_CONFLICT => "Conflit résolu sur une fiche",
        ERASURE_REQUESTED => "Effacement demandé",
        ERASURE_APPROVED => "Effacement approuvé et exécuté",
        ERASURE_REFUSED => "Effacement refusé",
        ACCESS_FILE_REFUSED => "Droit d'accès refusé (double authentification non activée)",
        ORGANISATION_CREATED => "Organisation créée (administrateur)",
        ORGANISATION_RENAMED => "Organisation renommée (administrateur)",
        TEAM_CREATED => "Équipe créée (administrateur)",
        USER_CREATED => "Compte créé (administrateur)",
        ROLE_CHANGED => "Rôle modifié (administrateur)",
        PASSWORD_SET => "Mot de passe défini (administrateur)",
        CODE_ISSUED => "Code d'enrôlement émis (administrateur)",
        DEVICE_REVOKED => "Tablette révoquée (administrateur)",
        PASSWORD_CHANGED => "Mot de passe changé par son titulaire",
        SESSION_ENDED => "Session fermée par son titulaire",
        TRANSFER_REQUESTED => "Transfert vers une autre équipe demandé",
        TRANSFER_ACCEPTED => "Transfert accepté : le jeune a changé d'équipe",
        TRANSFER_REFUSED => "Transfert refusé",
        TRANSFER_CANCELLED => "Transfert annulé",
        BREAK_GLASS_GRANTED => "Accès exceptionnel accordé (hors périmètre)",
        BREAK_GLASS_VIEWED => "Fiche consultée par accès exceptionnel",
        BREAK_GLASS_ENDED => "Accès exceptionnel terminé avant son échéance",
        _ => "Autre action",
    }
}

/// An entry about to be written.
#[derive(Debug, Clone)]
pub struct Audit {
    organisation_id: Option<Uuid>,
    user_id: Option<Uuid>,
    action: &'static str,
    target_id: Option<Uuid>,
    detail: String,
}

impl Audit {
    /// An action of a signed-in coordinator.
    pub fn by(
        who: &Coordinator,
        action: &'static str,
        target_id: Option<Uuid>,
        detail: impl Into<String>,
    ) -> Audit {
        Audit {
            organisation_id: Some(who.organisation.id),
            user_id: Some(who.user.id),
            action,
            target_id,
            detail: detail.into(),
        }
    }

    /// An action about a user who may be unknown (a failed sign-in).
    pub fn about_user(
        user: Option<&User>,
        action: &'static str,
        target_id: Option<Uuid>,
        detail: impl Into<String>,
    ) -> Audit {
        Audit {
            organisation_id: user.map(|u| u.organisation_id),
            user_id: user.map(|u| u.id),
            action,
            target_id,
            detail: detail.into(),
        }
    }

    /// An administration command about a user: in the user's organisation's journal, with
    /// the user as its object and the administrator as author (`None`: `repere-server
    /// admin …`, which has no signed-in author).
    pub fn by_administrator(
        user: &User,
        author: Option<Uuid>,
        action: &'static str,
        detail: impl Into<String>,
    ) -> Audit {
        Audit::administration(user.organisation_id, author, action, user.id, detail)
    }

    /// An administration command about an organisation's team, user or tablet.
    pub fn administration(
        organisation_id: Uuid,
        author: Option<Uuid>,
        action: &'static str,
        target_id: Uuid,
        detail: impl Into<String>,
    ) -> Audit {
        Audit {
            organisation_id: Some(organisation_id),
            user_id: author,
            action,
            target_id: Some(target_id),
            detail: detail.into(),
        }
    }

    pub fn entry(&self, at: DateTime<Utc>) -> AuditEntry {
        AuditEntry {
            id: 0,
            at,
            organisation_id: self.organisation_id,
            user_id: self.user_id,
            action: self.action.to_string(),
            target_id: self.target_id,
            detail: self.detail.clone(),
        }
    }
}

/// A journal line with the name of who did it.
#[derive(Debug, Clone)]
pub struct JournalLine {
    pub entry: AuditEntry,
    pub user_name: Option<String>,
}

impl Workspace {
    /// Writes one audit entry in its own transaction.
    pub(crate) fn record(&self, audit: Audit) -> Result<(), HubError> {
        let entry = audit.entry(self.now());
        self.hub()
            .storage()
            .write_with(|tx| Ok::<_, HubError>(tx.insert_audit(&entry)?))
    }

    /// The organisation's audit log, newest first.
    pub fn journal(&self, who: &Coordinator, page: usize) -> Result<Paged<JournalLine>, HubError> {
        let page = page.max(1);
        let (entries, total, names) =
            self.hub()
                .storage()
                .read_with(|tx| -> Result<_, HubError> {
                    let (entries, total) = tx.audit_entries(
                        who.organisation.id,
                        None,
                        (page - 1) * PAGE_SIZE,
                        PAGE_SIZE,
                    )?;
                    let names: HashMap<Uuid, String> = tx
                        .users()?
                        .into_iter()
                        .filter(|u| u.organisation_id == who.organisation.id)
                        .map(|u| (u.id, u.name))
                        .collect();
                    Ok((entries, total, names))
                })?;
        let items = entries
            .into_iter()
            .map(|entry| JournalLine {
                user_name: entry.user_id.and_then(|u| names.get(&u).cloned()),
                entry,
            })
            .collect();
        Ok(Paged::new(items, total, page))
    }
}
