use chrono::{DateTime, FixedOffset};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::data_map::{Category, FieldData, KindData, Shown};
use super::validate::{ValidationContext, check_opt_text, check_text};
use super::{FieldKind, Record, RecordKind};
use crate::error::{Problem, ValidationErrors};
use crate::index::enum_str;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewTaskStatus {
    /// Asked by a coordinator, waiting for the binôme.
    Open,
    Answered,
    /// The coordinator is satisfied (or withdrew the question).
    Closed,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

/// A coordinator's question about a visit: created on the server, synced to the team's
/// tablets, answered there, and the answer synced back. It is a record like the others,
/// so it merges, travels and is erased the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewTask {
    pub team_id: Uuid,
    /// The visit the question is about.
    pub contact_id: Uuid,
    pub question: String,
    /// The coordinator's display name, to show on the tablet.
    pub asked_by: String,
    pub asked_at: DateTime<FixedOffset>,
    /// Free text that merges character by character.
    #[serde(default)]
    pub answer: String,
    #[serde(default)]
    pub answered_by: Option<Uuid>,
    #[serde(default)]
    pub answered_at: Option<DateTime<FixedOffset>>,
    pub status: ReviewTaskStatus,
}

const QUESTION_MAX: usize = 2_000;
const ANSWER_MAX: usize = 5_000;

impl Record for ReviewTask {
    const KIND: RecordKind = RecordKind::ReviewTask;
    const SCHEMA: &'static [(&'static str, FieldKind)] = &[
        ("team_id", FieldKind::Scalar),
        ("contact_id", FieldKind::Scalar),
        ("question", FieldKind::Scalar),
        ("asked_by", FieldKind::Scalar),
        ("asked_at", FieldKind::Scalar),
        ("answer", FieldKind::Text),
        ("answered_by", FieldKind::Scalar),
        ("answered_at", FieldKind::Scalar),
        ("status", FieldKind::Scalar),
    ];

    const DATA_MAP: KindData = KindData {
        title: "Question de la coordination",
        about: "Une question d'un coordinateur au binôme sur une visite, écrite sur le serveur, \
                et la réponse du binôme écrite sur la tablette.",
        retention: "avec la visite sur laquelle porte la question",
        fields: &[
            FieldData {
                field: "team_id",
                category: Category::TechnicalId,
                purpose: "Rattacher la question à l'équipe de la visite : décide quelles \
                          tablettes la reçoivent.",
                pages: Shown::No,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "contact_id",
                category: Category::TechnicalId,
                purpose: "Relier la question à sa visite.",
                pages: Shown::Partly("la question figure sur la page de la visite"),
                tablet: &["review_task_index"],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "question",
                category: Category::FreeText,
                purpose: "Ce que la coordination demande au binôme sur la visite : peut nommer \
                          des personnes.",
                pages: Shown::Yes,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "asked_by",
                category: Category::Staff,
                purpose: "Le nom affiché du coordinateur qui pose la question, pour le binôme.",
                pages: Shown::Yes,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "asked_at",
                category: Category::Date,
                purpose: "Dater la question.",
                pages: Shown::Yes,
                tablet: &["review_task_index"],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "answer",
                category: Category::FreeText,
                purpose: "La réponse du binôme : peut nommer des personnes ou révéler des \
                          données sensibles.",
                pages: Shown::Yes,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "answered_by",
                category: Category::Staff,
                purpose: "Le membre de l'équipe qui a répondu.",
                pages: Shown::Partly("« membre » et la fin de son identifiant"),
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "answered_at",
                category: Category::Date,
                purpose: "Dater la réponse.",
                pages: Shown::Yes,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "status",
                category: Category::Activity,
                purpose: "Ouverte, répondue ou close.",
                pages: Shown::Yes,
                tablet: &["review_task_index"],
                exports: &[],
                exported_as: None,
            },
        ],
    };

    const DERIVED: &'static [(&'static str, &'static str)] = &[("review_task_index", "id")];

    fn write_derived(&self, conn: &Connection, bid: &[u8]) -> crate::error::Result<()> {
        conn.prepare_cached(
            "INSERT INTO review_task_index (id, contact_id, status, asked_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            bid,
            self.contact_id.as_bytes().as_slice(),
            enum_str(&self.status),
            self.asked_at
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ])?;
        Ok(())
    }

    fn team_id(&self) -> Uuid {
        self.team_id
    }

    fn validate(&self, ctx: &ValidationContext<'_>) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        check_text(&mut errs, "question", &self.question, QUESTION_MAX, true);
        check_opt_text(&mut errs, "asked_by", &Some(self.asked_by.clone()), 200);
        check_text(&mut errs, "answer", &self.answer, ANSWER_MAX, false);
        ctx.check_past_instant(&mut errs, "asked_at", &self.asked_at);
        if let Some(at) = &self.answered_at {
            ctx.check_past_instant(&mut errs, "answered_at", at);
        }
        if self.status == ReviewTaskStatus::Answered && self.answer.trim().is_empty() {
            errs.push("answer", Problem::Required);
        }
        errs.into_result()
    }
}
