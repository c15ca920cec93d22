use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::data_map::{Category, Export, FieldData, KindData, Shown};
use super::validate::{SHORT_TEXT_MAX, ValidationContext, check_opt_text};
use super::{FieldKind, Record, RecordKind, reach};
use crate::error::{Problem, ValidationErrors};
use crate::index::enum_str;

/// A mobilisation action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Paid educational work project, 5 days / 100 €.
    Chantier5Days,
    /// Paid educational work project over one month.
    ChantierMonth,
    Sport,
    Culture,
    Appointment,
    Other,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

impl ActionKind {
    pub fn is_chantier(self) -> bool {
        matches!(self, ActionKind::Chantier5Days | ActionKind::ChantierMonth)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    Planned,
    /// Took part / kept the appointment: this is what "mobilised" counts.
    Done,
    NoShow,
    Cancelled,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

/// A mobilisation action attached to a young person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub team_id: Uuid,
    pub youth_id: Uuid,
    pub kind: ActionKind,
    pub start_date: NaiveDate,
    #[serde(default)]
    pub end_date: Option<NaiveDate>,
    pub status: ActionStatus,
    #[serde(default)]
    pub detail: Option<String>,
}

impl Record for Action {
    const KIND: RecordKind = RecordKind::Action;
    const SCHEMA: &'static [(&'static str, FieldKind)] = &[
        ("team_id", FieldKind::Scalar),
        ("youth_id", FieldKind::Scalar),
        ("kind", FieldKind::Scalar),
        ("start_date", FieldKind::Scalar),
        ("end_date", FieldKind::Scalar),
        ("status", FieldKind::Scalar),
        ("detail", FieldKind::Scalar),
    ];

    const DATA_MAP: KindData = KindData {
        title: "Action de mobilisation",
        about: "Une action à laquelle un jeune est inscrit ou a pris part : chantier éducatif \
                rémunéré, activité sportive ou culturelle, rendez-vous.",
        retention: "avec la fiche du jeune",
        fields: &[
            FieldData {
                field: "team_id",
                category: Category::TechnicalId,
                purpose: "Rattacher l'action à l'équipe : décide qui la voit.",
                pages: Shown::No,
                tablet: &["action_index"],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "youth_id",
                category: Category::TechnicalId,
                purpose: "Relier l'action au jeune.",
                pages: Shown::Partly("l'action figure sur la fiche du jeune"),
                tablet: &["action_index", "youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some("nombre d'actions du jeune ; jeunes mobilisés"),
            },
            FieldData {
                field: "kind",
                category: Category::Activity,
                purpose: "Le type d'action ; les chantiers sont comptés pour le financeur.",
                pages: Shown::Yes,
                tablet: &["action_index", "youth_index"],
                exports: &[Export::Indicators],
                exported_as: None,
            },
            FieldData {
                field: "start_date",
                category: Category::Date,
                purpose: "Dater l'action ; la période où le jeune est compté mobilisé.",
                pages: Shown::Yes,
                tablet: &["action_index", "youth_index"],
                exports: &[Export::Indicators],
                exported_as: None,
            },
            FieldData {
                field: "end_date",
                category: Category::Date,
                purpose: "La fin d'une action sur plusieurs jours.",
                pages: Shown::Yes,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "status",
                category: Category::Activity,
                purpose: "Prévue, faite, absence ou annulée : « faite » compte comme \
                          mobilisation.",
                pages: Shown::Yes,
                tablet: &["action_index", "youth_index"],
                exports: &[Export::Indicators],
                exported_as: None,
            },
            FieldData {
                field: "detail",
                category: Category::FreeText,
                purpose: "Préciser l'action (lieu, structure…).",
                pages: Shown::No,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
        ],
    };

    const DERIVED: &'static [(&'static str, &'static str)] = &[("action_index", "id")];

    fn write_derived(&self, conn: &Connection, bid: &[u8]) -> crate::error::Result<()> {
        conn.prepare_cached(
            "INSERT INTO action_index (id, youth_id, team_id, kind, start_date, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            bid,
            self.youth_id.as_bytes().as_slice(),
            self.team_id.as_bytes().as_slice(),
            enum_str(&self.kind),
            self.start_date.to_string(),
            enum_str(&self.status)
        ])?;
        reach::actions_changed(conn, self.youth_id.as_bytes())
    }

    /// The young person's done actions are read again once this one is gone.
    fn remove_derived(conn: &Connection, bid: &[u8]) -> crate::error::Result<()> {
        let youth = youth_of(conn, "action_index", bid)?;
        conn.prepare_cached("DELETE FROM action_index WHERE id = ?1")?
            .execute([bid])?;
        match youth {
            Some(y) => reach::actions_changed(conn, &y),
            None => Ok(()),
        }
    }

    fn team_id(&self) -> Uuid {
        self.team_id
    }

    fn validate(&self, ctx: &ValidationContext<'_>) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        if self.start_date < super::validate::EARLIEST_DATE {
            errs.push("start_date", Problem::TooOld);
        }
        // Planned actions lie ahead; one that took place cannot be in the future.
        if matches!(self.status, ActionStatus::Done | ActionStatus::NoShow) {
            ctx.check_past_date(&mut errs, "start_date", self.start_date);
        }
        if self.end_date.is_some_and(|e| e < self.start_date) {
            errs.push("end_date", Problem::EndBeforeStart);
        }
        check_opt_text(&mut errs, "detail", &self.detail, SHORT_TEXT_MAX);
        errs.into_result()
    }
}

/// What the young person reached ("solution").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    MissionLocaleRegistration,
    FranceTravailRegistration,
    CapEmploiRegistration,
    Job,
    Training,
    ReturnToSchool,
    Housing,
    HealthCare,
    Other,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub team_id: Uuid,
    pub youth_id: Uuid,
    pub kind: OutcomeKind,
    pub date: NaiveDate,
    /// The organisation that took over (Mission Locale de Verdun, an employer…).
    #[serde(default)]
    pub organisation: Option<String>,
}

impl Record for Outcome {
    const KIND: RecordKind = RecordKind::Outcome;
    const SCHEMA: &'static [(&'static str, FieldKind)] = &[
        ("team_id", FieldKind::Scalar),
        ("youth_id", FieldKind::Scalar),
        ("kind", FieldKind::Scalar),
        ("date", FieldKind::Scalar),
        ("organisation", FieldKind::Scalar),
    ];

    const DATA_MAP: KindData = KindData {
        title: "Solution",
        about: "Ce que le jeune a obtenu, avec sa date : inscription à la Mission Locale, à \
                France Travail ou à Cap emploi, emploi, formation, retour en études, logement, \
                soins.",
        retention: "avec la fiche du jeune",
        fields: &[
            FieldData {
                field: "team_id",
                category: Category::TechnicalId,
                purpose: "Rattacher la solution à l'équipe : décide qui la voit.",
                pages: Shown::No,
                tablet: &["outcome_index"],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "youth_id",
                category: Category::TechnicalId,
                purpose: "Relier la solution au jeune.",
                pages: Shown::Partly("la solution figure sur la fiche du jeune"),
                tablet: &["outcome_index", "youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some("nombre de solutions du jeune ; jeunes avec une solution"),
            },
            FieldData {
                field: "kind",
                category: Category::Special,
                purpose: "La solution atteinte, comptée par type pour le financeur ; « accès aux \
                          soins » révèle une démarche de santé.",
                pages: Shown::Yes,
                tablet: &["outcome_index", "youth_index"],
                exports: &[Export::Indicators],
                exported_as: None,
            },
            FieldData {
                field: "date",
                category: Category::Date,
                purpose: "Dater la solution ; la période où elle est comptée.",
                pages: Shown::Yes,
                tablet: &["outcome_index", "youth_index"],
                exports: &[Export::Indicators],
                exported_as: None,
            },
            FieldData {
                field: "organisation",
                category: Category::FreeText,
                purpose: "L'organisme ou l'employeur qui a pris le relais.",
                pages: Shown::Yes,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
        ],
    };

    const DERIVED: &'static [(&'static str, &'static str)] = &[("outcome_index", "id")];

    fn write_derived(&self, conn: &Connection, bid: &[u8]) -> crate::error::Result<()> {
        conn.prepare_cached(
            "INSERT INTO outcome_index (id, youth_id, team_id, kind, date)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            bid,
            self.youth_id.as_bytes().as_slice(),
            self.team_id.as_bytes().as_slice(),
            enum_str(&self.kind),
            self.date.to_string()
        ])?;
        reach::outcomes_changed(conn, self.youth_id.as_bytes())
    }

    /// The young person's outcomes are read again once this one is gone.
    fn remove_derived(conn: &Connection, bid: &[u8]) -> crate::error::Result<()> {
        let youth = youth_of(conn, "outcome_index", bid)?;
        conn.prepare_cached("DELETE FROM outcome_index WHERE id = ?1")?
            .execute([bid])?;
        match youth {
            Some(y) => reach::outcomes_changed(conn, &y),
            None => Ok(()),
        }
    }

    fn team_id(&self) -> Uuid {
        self.team_id
    }

    fn validate(&self, ctx: &ValidationContext<'_>) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        ctx.check_past_date(&mut errs, "date", self.date);
        check_opt_text(
            &mut errs,
            "organisation",
            &self.organisation,
            super::validate::SHORT_TEXT_MAX,
        );
        errs.into_result()
    }
}

/// The young person an action's or outcome's index row names, if the record is indexed.
fn youth_of(conn: &Connection, table: &str, bid: &[u8]) -> crate::error::Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached(&format!("SELECT youth_id FROM {table} WHERE id = ?1"))?
        .query_row([bid], |r| r.get(0))
        .optional()?)
}
