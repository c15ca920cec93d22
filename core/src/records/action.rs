use chrono::NaiveDate;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::validate::{SHORT_TEXT_MAX, ValidationContext, check_opt_text};
use super::{FieldKind, Record, RecordKind};
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
        Ok(())
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
        Ok(())
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
