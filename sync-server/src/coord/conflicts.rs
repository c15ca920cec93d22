//! Conflicts resolved on the coordinators' pages (issue 11): a field edited concurrently on
//! two tablets holds both values; a coordinator keeps one of them or types another.
//!
//! The resolution is an ordinary Automerge change on the server's copy of the document,
//! written by the coordinator's actor (nil device id + the coordinator's user id, as for
//! their questions: see `review::author`), checked by the rule the tablets use
//! (`RecordDoc::resolve_conflict`: the kind's validation, no value only known as "from a
//! newer version"), and stored at the next log position: the team's tablets pull it at
//! their next sync like any teammate's change, which supersedes both values. Their unsent
//! edits to other fields merge as usual, and the server's authorship check on pushes only
//! looks at changes it does not have, so it never refuses the coordinator's.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use repere_core::document::{Author, FieldConflict, RecordDoc};
use repere_core::records::{
    ActionKind, ActionStatus, AnyRecord, ContactKind, IdentityLevel, OutcomeKind, ReferralSource,
    Service, Sex, Situation, ValidationContext,
};
use repere_core::{Communes, Error as CoreError, RecordKind};
use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use uuid::Uuid;

use super::audit::{self, Audit};
use super::labels;
use super::reports::serde_id;
use super::review::author;
use super::view::{commune_name, decode_any, resolve_communes};
use super::{Coordinator, Workspace, short_id};
use crate::hub::{HubError, put_server_change};

/// The kinds whose pages show their conflicts: a visit (on its page), a young person's
/// file and its actions and outcomes (on the young person's page).
pub const PAGE_KINDS: [RecordKind; 4] = [
    RecordKind::Contact,
    RecordKind::Youth,
    RecordKind::Action,
    RecordKind::Outcome,
];

/// The page that shows a record's conflicts (where to go back after resolving one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictPage {
    Visit(Uuid),
    /// The young person's page: their file, or one of their actions or outcomes.
    Youth(Uuid),
}

impl ConflictPage {
    fn of(id: Uuid, record: &AnyRecord) -> Option<ConflictPage> {
        match record {
            AnyRecord::Contact(_) => Some(ConflictPage::Visit(id)),
            AnyRecord::Youth(_) => Some(ConflictPage::Youth(id)),
            AnyRecord::Action(a) => Some(ConflictPage::Youth(a.youth_id)),
            AnyRecord::Outcome(o) => Some(ConflictPage::Youth(o.youth_id)),
            AnyRecord::Tour(_) | AnyRecord::ReviewTask(_) => None,
        }
    }
}

/// Typed text longer than this is refused before anything else (the kinds' own limits
/// are smaller).
const TYPED_MAX_CHARS: usize = 2000;

/// One of a conflicting field's values, as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownValue {
    /// In French (an enum's label, a date as 05/03/2025, a commune's name).
    pub label: String,
    /// The value as JSON: what the form sends back to keep it.
    pub json: String,
    pub author: Option<Author>,
    /// The writer's device clock (informative only).
    pub written_at: Option<DateTime<Utc>>,
}

/// How another value is typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Text,
    /// A date, typed as JJ/MM/AAAA.
    Date,
    /// A date and time, typed as JJ/MM/AAAA HH:MM (at the offset of the value shown).
    DateTime,
    /// One of the kind's known values: (serde id, French label).
    Select(Vec<(String, &'static str)>),
}

/// A conflicting field with its values and the way to type another.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenConflict {
    pub field: String,
    /// The field's name in French.
    pub label: String,
    /// The value the record currently shows comes first.
    pub values: Vec<ShownValue>,
    pub input: Input,
}

/// What the coordinator chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// One of the values, as the page gave it (`ShownValue::json`).
    Keep(String),
    /// Another value, as typed (or chosen in the list of known values).
    Other(String),
}

/// A record's conflicts as the page shows them.
pub fn open_conflicts(kind: RecordKind, conflicts: &[FieldConflict]) -> Vec<OpenConflict> {
    conflicts
        .iter()
        .map(|c| OpenConflict {
            field: c.field.clone(),
            label: labels::field(&c.field).to_string(),
            values: c
                .values
                .iter()
                .map(|v| ShownValue {
                    label: shown(kind, &c.field, &v.value),
                    json: v.value.to_string(),
                    author: v.author,
                    written_at: v.written_at,
                })
                .collect(),
            input: input_for(kind, &c.field, sample(c)),
        })
        .collect()
}

/// The value whose shape another value is typed in: the first one that is not empty (a
/// field cleared on one tablet and set on the other is still a date, a number…).
fn sample(c: &FieldConflict) -> Option<&Json> {
    c.values
        .iter()
        .map(|v| &v.value)
        .find(|v| !v.is_null())
        .or_else(|| c.values.first().map(|v| &v.value))
}

fn label_of<T: DeserializeOwned>(v: &Json, label: fn(T) -> &'static str) -> Option<String> {
    serde_json::from_value::<T>(v.clone())
        .ok()
        .map(|t| label(t).to_string())
}

/// The French label of an enum field's value; `None` for the other fields.
fn enum_label(kind: RecordKind, field: &str, v: &Json) -> Option<String> {
    match (kind, field) {
        (RecordKind::Contact, "kind") => label_of(v, labels::contact_kind),
        (RecordKind::Youth, "identity_level") => label_of(v, labels::identity_level),
        (RecordKind::Youth, "sex") => label_of(v, labels::sex),
        (RecordKind::Youth, "referral_source") => label_of(v, labels::referral),
        (RecordKind::Youth, "situation") => label_of(v, labels::situation),
        (RecordKind::Youth, "followed_by") => label_of(v, labels::service),
        (RecordKind::Youth, "status") => label_of(v, labels::youth_status),
        (RecordKind::Action, "kind") => label_of(v, labels::action_kind),
        (RecordKind::Action, "status") => label_of(v, labels::action_status),
        (RecordKind::Outcome, "kind") => label_of(v, labels::outcome_kind),
        _ => None,
    }
}

fn options<T: serde::Serialize + Copy>(
    all: &[T],
    label: fn(T) -> &'static str,
) -> Vec<(String, &'static str)> {
    all.iter().map(|v| (serde_id(v), label(*v))).collect()
}

fn input_for(kind: RecordKind, field: &str, sample: Option<&Json>) -> Input {
    let select = match (kind, field) {
        (RecordKind::Contact, "kind") => Some(options(
            &[
                ContactKind::Street,
                ContactKind::Home,
                ContactKind::TownHall,
                ContactKind::PartnerPremises,
                ContactKind::Event,
                ContactKind::Phone,
                ContactKind::SocialNetwork,
                ContactKind::Other,
            ],
            labels::contact_kind,
        )),
        (RecordKind::Youth, "identity_level") => Some(options(
            &[
                IdentityLevel::AliasOnly,
                IdentityLevel::FirstName,
                IdentityLevel::FullIdentity,
            ],
            labels::identity_level,
        )),
        (RecordKind::Youth, "sex") => {
            Some(options(&[Sex::Female, Sex::Male, Sex::Other], labels::sex))
        }
        (RecordKind::Youth, "referral_source") => Some(options(
            &[
                ReferralSource::TownHall,
                ReferralSource::Shop,
                ReferralSource::AssociationOrClub,
                ReferralSource::PartnerInstitution,
                ReferralSource::PhoneLine,
                ReferralSource::Website,
                ReferralSource::SocialNetwork,
                ReferralSource::SelfReferral,
                ReferralSource::Peer,
                ReferralSource::Outreach,
                ReferralSource::Other,
            ],
            labels::referral,
        )),
        (RecordKind::Youth, "situation") => Some(options(
            &[
                Situation::Neet,
                Situation::InEducation,
                Situation::InEmployment,
                Situation::InTraining,
                Situation::Unknown,
            ],
            labels::situation,
        )),
        (RecordKind::Youth, "followed_by") => Some(options(
            &[
                Service::MissionLocale,
                Service::FranceTravail,
                Service::CapEmploi,
            ],
            labels::service,
        )),
        (RecordKind::Youth, "status") => {
            Some(options(&labels::YOUTH_STATUSES, labels::youth_status))
        }
        (RecordKind::Action, "kind") => Some(options(
            &[
                ActionKind::Chantier5Days,
                ActionKind::ChantierMonth,
                ActionKind::Sport,
                ActionKind::Culture,
                ActionKind::Appointment,
                ActionKind::Other,
            ],
            labels::action_kind,
        )),
        (RecordKind::Action, "status") => Some(options(
            &[
                ActionStatus::Planned,
                ActionStatus::Done,
                ActionStatus::NoShow,
                ActionStatus::Cancelled,
            ],
            labels::action_status,
        )),
        (RecordKind::Outcome, "kind") => Some(options(
            &[
                OutcomeKind::MissionLocaleRegistration,
                OutcomeKind::FranceTravailRegistration,
                OutcomeKind::CapEmploiRegistration,
                OutcomeKind::Job,
                OutcomeKind::Training,
                OutcomeKind::ReturnToSchool,
                OutcomeKind::Housing,
                OutcomeKind::HealthCare,
                OutcomeKind::Other,
            ],
            labels::outcome_kind,
        )),
        _ => None,
    };
    match select {
        Some(options) => Input::Select(options),
        None if sample.is_some_and(|v| as_day(v).is_some()) => Input::Date,
        None if sample.is_some_and(|v| as_time(v).is_some()) => Input::DateTime,
        None => Input::Text,
    }
}

fn as_day(v: &Json) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v.as_str()?, "%Y-%m-%d").ok()
}

fn as_time(v: &Json) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(v.as_str()?).ok()
}

fn is_commune(field: &str) -> bool {
    matches!(field, "commune" | "home_commune")
}

/// A value in French, for the page.
fn shown(kind: RecordKind, field: &str, v: &Json) -> String {
    if let Some(label) = enum_label(kind, field, v) {
        return label;
    }
    match v {
        Json::Null => "(vide)".to_string(),
        Json::Bool(b) => if *b { "oui" } else { "non" }.to_string(),
        Json::String(s) if is_commune(field) => format!("{} ({s})", commune_name(s)),
        Json::String(s) => {
            if let Some(day) = as_day(v) {
                labels::day(day)
            } else if let Some(t) = as_time(v) {
                labels::device_time(&t)
            } else if let Ok(id) = Uuid::parse_str(s) {
                short_id(id)
            } else {
                s.clone()
            }
        }
        other => other.to_string(),
    }
}

fn refused(message: &str) -> HubError {
    HubError::BadInput(message.to_string())
}

/// A kept value as the form sent it: one scalar, or empty (a field cleared on a tablet).
fn kept(json: &str) -> Result<Json, HubError> {
    match serde_json::from_str::<Json>(json) {
        Ok(v @ (Json::Null | Json::String(_) | Json::Number(_) | Json::Bool(_))) => Ok(v),
        _ => Err(refused(
            "La valeur choisie est illisible : rechargez la page.",
        )),
    }
}

/// Typed text as the field's value, read after the shape of the value shown (`sample`).
fn typed(field: &str, text: &str, sample: &Json) -> Result<Json, HubError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(refused(
            "Saisissez une valeur, ou choisissez l'une des valeurs proposées.",
        ));
    }
    if text.chars().count() > TYPED_MAX_CHARS {
        return Err(refused("La valeur saisie est trop longue."));
    }
    match sample {
        Json::Number(_) => text
            .parse::<i64>()
            .map(Json::from)
            .map_err(|_| refused("Saisissez un nombre entier.")),
        Json::Bool(_) => match text.to_lowercase().as_str() {
            "oui" | "true" => Ok(Json::Bool(true)),
            "non" | "false" => Ok(Json::Bool(false)),
            _ => Err(refused("Saisissez « oui » ou « non ».")),
        },
        _ if as_day(sample).is_some() => NaiveDate::parse_from_str(text, "%d/%m/%Y")
            .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d"))
            .map(|d| Json::String(d.format("%Y-%m-%d").to_string()))
            .map_err(|_| refused("Saisissez une date au format JJ/MM/AAAA.")),
        _ if as_time(sample).is_some() => {
            let offset = as_time(sample).map(|t| *t.offset());
            NaiveDateTime::parse_from_str(text, "%d/%m/%Y %H:%M")
                .ok()
                .zip(offset)
                .and_then(|(local, offset)| local.and_local_timezone(offset).single())
                .or_else(|| DateTime::parse_from_rfc3339(text).ok())
                .map(|t| Json::String(t.to_rfc3339()))
                .ok_or_else(|| refused("Saisissez une date et une heure : JJ/MM/AAAA HH:MM."))
        }
        _ if is_commune(field) => {
            // A code, or a name that names one commune.
            let codes = resolve_communes(text);
            Ok(Json::String(match codes.as_slice() {
                [code] => code.clone(),
                _ => text.to_uppercase(),
            }))
        }
        _ => Ok(Json::String(text.to_string())),
    }
}

/// Why the core refused a resolution, in French (field names and problems, never values).
fn core_refusal(e: CoreError) -> HubError {
    match e {
        CoreError::Invalid(errors) => HubError::BadInput(format!(
            "Valeur refusée : {}.",
            errors
                .0
                .iter()
                .map(|e| format!("{} : {}", labels::field(e.field), e.problem))
                .collect::<Vec<_>>()
                .join(" ; ")
        )),
        CoreError::NoConflict { .. } | CoreError::UnknownField { .. } => no_longer(),
        CoreError::CorruptDocument { .. } => refused("Cette valeur ne convient pas à ce champ."),
        e => HubError::Internal(format!("resolving a conflict: {e}")),
    }
}

fn no_longer() -> HubError {
    refused(
        "Ce champ n'est plus en conflit : il a peut-être été résolu sur une tablette entre-temps. \
         Rien n'a été enregistré.",
    )
}

impl Workspace {
    /// Resolves the conflict on `field` of a visit, a young person's file or one of their
    /// actions or outcomes, of the coordinator's teams: one change by the coordinator on
    /// the server's copy, synced to the tablets, journaled (the record's kind and the
    /// field's name, never a value). Returns the page to go back to. A refused value is
    /// `BadInput` with a French message.
    pub fn resolve_conflict(
        &self,
        who: &Coordinator,
        id: Uuid,
        field: &str,
        resolution: &Resolution,
    ) -> Result<ConflictPage, HubError> {
        let now = self.now();
        let ctx = ValidationContext {
            now,
            communes: Communes::global(),
        };
        let back = self
            .hub()
            .storage()
            .write_with(|tx| -> Result<ConflictPage, HubError> {
                let stored = tx
                    .document(id)?
                    .filter(|d| PAGE_KINDS.contains(&d.kind) && who.in_scope(d.team_id))
                    .ok_or(HubError::NotFound { what: "record", id })?;
                let mut doc = RecordDoc::load(stored.kind, id, &stored.doc, author(who))
                    .map_err(|e| HubError::Internal(format!("stored record unreadable: {e}")))?;
                let conflicts = doc.conflicts();
                let Some(sample) = conflicts
                    .iter()
                    .find(|c| c.field == field)
                    .and_then(sample)
                    .cloned()
                else {
                    return Err(no_longer());
                };
                let value = match resolution {
                    Resolution::Keep(json) => kept(json)?,
                    Resolution::Other(text) => typed(field, text, &sample)?,
                };
                let record = doc
                    .resolve_conflict(field, &value, &ctx)
                    .map_err(core_refusal)?;
                if record.team_id() != stored.team_id {
                    return Err(refused(
                        "Une résolution ne peut pas changer l'équipe de la fiche.",
                    ));
                }
                put_server_change(tx, &mut doc, stored.team_id, stored.generation, now)?;
                tx.insert_audit(
                    &Audit::by(
                        who,
                        audit::RESOLVE_CONFLICT,
                        Some(id),
                        format!("{} : champ {}", stored.kind, labels::field(field)),
                    )
                    .entry(now),
                )?;
                ConflictPage::of(id, &record).ok_or(HubError::NotFound { what: "record", id })
            })?;
        tracing::info!(record = %id, "conflict resolved by a coordinator");
        self.refresh_view()?;
        Ok(back)
    }

    /// The page that shows the conflicts of a record of the coordinator's teams (`None`
    /// when unknown, out of scope or of a kind without one).
    pub fn conflict_page(
        &self,
        who: &Coordinator,
        id: Uuid,
    ) -> Result<Option<ConflictPage>, HubError> {
        self.refresh_view()?;
        self.hub().storage().read_with(|tx| -> Result<_, HubError> {
            Ok(tx
                .view_record(id)?
                .filter(|v| PAGE_KINDS.contains(&v.kind) && who.in_scope(v.team_id))
                .as_ref()
                .and_then(decode_any)
                .and_then(|r| ConflictPage::of(id, &r)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_take_the_shape_of_the_field() {
        let day = Json::String("2025-03-05".into());
        assert_eq!(
            typed("next_step_due", "06/03/2025", &day).unwrap(),
            Json::String("2025-03-06".into())
        );
        assert!(typed("next_step_due", "demain", &day).is_err());
        let at = Json::String("2025-03-05T14:00:00+01:00".into());
        assert_eq!(
            typed("occurred_at", "05/03/2025 15:30", &at).unwrap(),
            Json::String("2025-03-05T15:30:00+01:00".into())
        );
        assert_eq!(
            typed("birth_year", "2004", &Json::from(2003)).unwrap(),
            Json::from(2004)
        );
        assert!(typed("birth_year", "vingt", &Json::from(2003)).is_err());
        assert!(typed("alias", "   ", &Json::String("Jo".into())).is_err());
        assert_eq!(
            typed("commune", "55502", &Json::String("55545".into())).unwrap(),
            Json::String("55502".into())
        );
    }

    #[test]
    fn kept_values_are_scalars() {
        assert_eq!(kept("\"street\"").unwrap(), Json::String("street".into()));
        assert_eq!(kept("null").unwrap(), Json::Null);
        assert!(kept("{\"a\":1}").is_err());
        assert!(kept("not json").is_err());
    }

    #[test]
    fn values_show_in_french() {
        assert_eq!(
            shown(
                RecordKind::Contact,
                "kind",
                &Json::String("town_hall".into())
            ),
            "Mairie"
        );
        assert_eq!(
            shown(
                RecordKind::Youth,
                "birth_date",
                &Json::String("2004-01-02".into())
            ),
            "02/01/2004"
        );
        assert_eq!(
            shown(
                RecordKind::Action,
                "status",
                &Json::String("no_show".into())
            ),
            "Absence"
        );
        assert_eq!(
            shown(RecordKind::Outcome, "kind", &Json::String("job".into())),
            "Emploi"
        );
    }
}
