//! Break-the-glass: read access for a while to one file of another team, asked with a
//! reason (`request_access`), answered at a sync, the file lent read-only until its end.

use repere_core::sync::protocol::{ACCESS_DEFAULT_MINUTES, ACCESS_MINUTES, ACCESS_REASON_CHARS};
use repere_core::{
    AccessState as CoreState, AskedAccess, Error as CoreError, LentFileSummary as CoreSummary,
    LentYouthFile, refusal_code,
};

use crate::error::{FieldProblem, RepereError, guard, problem_code};
use crate::records::{NewAction, NewContact, NewOutcome, NewYouth, parse_id};
use crate::store::RepereStore;

/// What a request may say, for the form (the core checks the same).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AccessLimits {
    /// The reason's length once trimmed, in characters.
    pub reason_min_chars: u32,
    pub reason_max_chars: u32,
    pub min_minutes: u32,
    pub max_minutes: u32,
    /// What the form offers first (two hours).
    pub default_minutes: u32,
}

#[uniffi::export]
pub fn access_limits() -> AccessLimits {
    AccessLimits {
        reason_min_chars: *ACCESS_REASON_CHARS.start() as u32,
        reason_max_chars: *ACCESS_REASON_CHARS.end() as u32,
        min_minutes: *ACCESS_MINUTES.start(),
        max_minutes: *ACCESS_MINUTES.end(),
        default_minutes: ACCESS_DEFAULT_MINUTES,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum AccessState {
    /// Waiting for a sync to carry it and the server to answer (« en attente »).
    Pending,
    /// Readable until `expires_at` (RFC 3339, UTC): « Accès jusqu'à HH:MM ».
    Granted { expires_at: String },
    /// `code`: unknown_file, own_team, bad_reason, bad_duration, too_many; `user_message`
    /// says it in French. Listed for a day.
    Refused { code: String, user_message: String },
}

/// A break-the-glass request made on this tablet.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AccessRequest {
    pub id: String,
    /// The file asked for (the reference its team gave).
    pub youth_id: String,
    pub member_id: String,
    pub reason: String,
    pub minutes: u32,
    /// RFC 3339, UTC (the tablet's clock).
    pub asked_at: String,
    pub state: AccessState,
}

/// A file lent to this tablet, as listed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LentFileSummary {
    pub grant_id: String,
    pub youth_id: String,
    pub display_name: String,
    /// The team that holds the file: who to call about it.
    pub team_name: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

/// A visit of a lent file: its fields only, no version (it cannot be edited).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LentVisit {
    pub id: String,
    pub visit: NewContact,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LentAction {
    pub id: String,
    pub action: NewAction,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LentOutcome {
    pub id: String,
    pub outcome: NewOutcome,
}

/// A lent file, to read only: the young person and their visits (most recent first),
/// actions (latest start first) and outcomes (latest first), as the team holding it has
/// them. Records without version: no update call takes them.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LentFile {
    pub grant_id: String,
    pub youth_id: String,
    pub team_name: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
    pub youth: NewYouth,
    pub visits: Vec<LentVisit>,
    pub actions: Vec<LentAction>,
    pub outcomes: Vec<LentOutcome>,
}

fn state(s: CoreState) -> AccessState {
    match s {
        CoreState::Pending => AccessState::Pending,
        CoreState::Granted { expires_at } => AccessState::Granted {
            expires_at: expires_at.to_rfc3339(),
        },
        CoreState::Refused(r) => AccessState::Refused {
            code: refusal_code(r).to_string(),
            user_message: r.message().to_string(),
        },
    }
}

fn request(a: AskedAccess) -> AccessRequest {
    AccessRequest {
        id: a.id.to_string(),
        youth_id: a.youth_id.to_string(),
        member_id: a.member_id.to_string(),
        reason: a.reason,
        minutes: a.minutes,
        asked_at: a.asked_at.to_rfc3339(),
        state: state(a.state),
    }
}

fn summary(f: CoreSummary) -> LentFileSummary {
    LentFileSummary {
        grant_id: f.grant_id.to_string(),
        youth_id: f.youth_id.to_string(),
        display_name: f.display_name,
        team_name: f.team_name,
        expires_at: f.expires_at.to_rfc3339(),
    }
}

fn file(f: LentYouthFile) -> LentFile {
    LentFile {
        grant_id: f.grant_id.to_string(),
        youth_id: f.youth_id.to_string(),
        team_name: f.team_name,
        expires_at: f.expires_at.to_rfc3339(),
        youth: f.youth.into(),
        visits: f
            .visits
            .into_iter()
            .map(|(id, c)| LentVisit {
                id: id.to_string(),
                visit: c.into(),
            })
            .collect(),
        actions: f
            .actions
            .into_iter()
            .map(|(id, a)| LentAction {
                id: id.to_string(),
                action: a.into(),
            })
            .collect(),
        outcomes: f
            .outcomes
            .into_iter()
            .map(|(id, o)| LentOutcome {
                id: id.to_string(),
                outcome: o.into(),
            })
            .collect(),
    }
}

/// A refused request says « demande non envoyée » with what to correct, not « fiche non
/// enregistrée ».
fn not_sent(fields: Vec<FieldProblem>) -> RepereError {
    RepereError::Validation {
        user_message: format!(
            "Demande non envoyée : {}",
            fields
                .iter()
                .map(|f| f.user_message.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        fields,
    }
}

#[uniffi::export]
impl RepereStore {
    /// Asks for read access to the file `youth_id` (the reference the team holding it
    /// gives) for `minutes` (see `access_limits`), in the name of the member set with
    /// `set_member`, because of `reason`; returns the request's id. The next sync carries
    /// it; `access_requests` then says the answer, and a granted file comes in `lent_files`.
    /// Refused here (`Validation`, every field at once: `youth_id`, `reason`, `minutes`,
    /// `member_id`) when the reference is not one, the reason or the duration is out of
    /// bounds, no member is set, or the file is on this tablet already.
    pub fn request_access(
        &self,
        youth_id: String,
        reason: String,
        minutes: u32,
    ) -> Result<String, RepereError> {
        guard(|| {
            let id = parse_id(&youth_id).map_err(|_| {
                not_sent(vec![FieldProblem {
                    field: "youth_id".into(),
                    code: "bad_format".into(),
                    user_message: "La référence n'est pas valide : c'est l'identifiant de la fiche (36 caractères, chiffres, lettres de a à f et tirets) que l'équipe du jeune vous donne.".into(),
                }])
            })?;
            match self.lock().request_access(id, &reason, minutes) {
                Ok(id) => Ok(id.to_string()),
                Err(CoreError::Invalid(v)) => Err(not_sent(
                    v.0.iter()
                        .map(|f| FieldProblem {
                            field: f.field.to_string(),
                            code: problem_code(&f.problem).to_string(),
                            user_message: match f.field {
                                "member_id" => "Choisissez d'abord qui utilise la tablette.".into(),
                                _ => f.problem.to_string(),
                            },
                        })
                        .collect(),
                )),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// The break-the-glass requests made here, newest first: pending, granted (until the
    /// file's end) or refused (for a day, with the reason why).
    pub fn access_requests(&self) -> Result<Vec<AccessRequest>, RepereError> {
        guard(|| {
            Ok(self
                .lock()
                .access_requests()?
                .into_iter()
                .map(request)
                .collect())
        })
    }

    /// The files lent to this tablet and not over, the soonest to end first. Each read
    /// first deletes what is over by the tablet's clock (`on_lending_change` follows).
    pub fn lent_files(&self) -> Result<Vec<LentFileSummary>, RepereError> {
        guard(|| Ok(self.lock().lent_files()?.into_iter().map(summary).collect()))
    }

    /// The lent file of `youth_id`, read-only; `None` when it is not (or no longer) lent.
    pub fn lent_file(&self, youth_id: String) -> Result<Option<LentFile>, RepereError> {
        guard(|| Ok(self.lock().lent_file(parse_id(&youth_id)?)?.map(file)))
    }
}
