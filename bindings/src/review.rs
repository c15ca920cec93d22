//! The tablet's side of the review loop, its own indicators, and a record's history.

use chrono::NaiveDate;
use repere_core::indicators::{self, Dimension, Granularity, IndicatorQuery};
use repere_core::records::{ReviewTask as CoreTask, ReviewTaskStatus};

use crate::error::{FieldProblem, RepereError, guard};
use crate::records::parse_id;
use crate::store::RepereStore;

#[uniffi::remote(Enum)]
pub enum ReviewTaskStatus {
    Open,
    Answered,
    Closed,
    FromNewerVersion,
}

/// A coordinator's question about a visit.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ReviewTask {
    pub id: String,
    pub contact_id: String,
    pub question: String,
    pub asked_by: String,
    pub asked_at: String,
    pub answer: String,
    pub answered_by: Option<String>,
    pub answered_at: Option<String>,
    pub status: ReviewTaskStatus,
}

fn task(id: uuid::Uuid, t: CoreTask) -> ReviewTask {
    ReviewTask {
        id: id.to_string(),
        contact_id: t.contact_id.to_string(),
        question: t.question,
        asked_by: t.asked_by,
        asked_at: t.asked_at.to_rfc3339(),
        answer: t.answer,
        answered_by: t.answered_by.map(|m| m.to_string()),
        answered_at: t.answered_at.map(|a| a.to_rfc3339()),
        status: t.status,
    }
}

#[uniffi::remote(Enum)]
pub enum Granularity {
    Month,
    Quarter,
    Whole,
}

#[uniffi::remote(Enum)]
pub enum Dimension {
    Team,
    Commune,
    Epci,
    ReferralSource,
    AgeBand,
    Sex,
    ProfileFlag,
}

/// One row of figures: a period's total (`key` = null) or one value of the dimension.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct IndicatorRow {
    pub period: String,
    pub key: Option<String>,
    pub label: String,
    pub identified: u32,
    pub helped: u32,
    pub mobilised: u32,
    pub chantier_participants: u32,
    pub youth_with_outcome: u32,
    pub outcomes: u32,
}

/// One change of a record: who, when (device clock), which fields.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct HistoryEntry {
    pub member_id: Option<String>,
    pub written_at: Option<String>,
    pub fields: Vec<String>,
}

fn date(field: &str, s: &str) -> Result<NaiveDate, RepereError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        RepereError::validation(vec![FieldProblem {
            field: field.into(),
            code: "bad_format".into(),
            user_message: repere_core::Problem::BadFormat.to_string(),
        }])
    })
}

#[uniffi::export]
impl RepereStore {
    /// Coordinators' questions synced to this tablet, oldest first.
    pub fn review_tasks(&self, open_only: bool) -> Result<Vec<ReviewTask>, RepereError> {
        guard(|| {
            Ok(self
                .lock()
                .review_tasks(open_only)?
                .into_iter()
                .map(|(id, t)| task(id, t))
                .collect())
        })
    }

    /// Answers a question as the current member; the answer goes back at the next sync.
    pub fn answer_review_task(
        &self,
        id: String,
        answer: String,
    ) -> Result<ReviewTask, RepereError> {
        guard(|| {
            let id = parse_id(&id)?;
            Ok(task(id, self.lock().answer_review_task(id, &answer)?))
        })
    }

    /// The funder figures over this tablet's records (dates `YYYY-MM-DD`, inclusive),
    /// computed by the same code as the coordinators' dashboard.
    pub fn indicators(
        &self,
        from: String,
        to: String,
        granularity: Granularity,
        dimension: Option<Dimension>,
    ) -> Result<Vec<IndicatorRow>, RepereError> {
        guard(|| {
            let query = IndicatorQuery {
                from: date("from", &from)?,
                to: date("to", &to)?,
                granularity,
                teams: None,
                dimension,
            };
            // The store is held only while its rows are read; counting runs without it.
            let facts = self.lock().indicator_facts()?;
            let report = indicators::count(&facts, &query).map_err(repere_core::Error::from)?;
            Ok(report
                .rows
                .into_iter()
                .map(|r| IndicatorRow {
                    period: r.period.label,
                    key: r.key,
                    label: r.label,
                    identified: r.figures.identified,
                    helped: r.figures.helped,
                    mobilised: r.figures.mobilised,
                    chantier_participants: r.figures.chantier_participants,
                    youth_with_outcome: r.figures.youth_with_outcome,
                    outcomes: r.figures.outcomes.total(),
                })
                .collect())
        })
    }

    /// Who changed which field of a record, and when.
    pub fn history(&self, id: String) -> Result<Vec<HistoryEntry>, RepereError> {
        guard(|| {
            let id = parse_id(&id)?;
            Ok(self
                .lock()
                .history(id)?
                .into_iter()
                .map(|h| HistoryEntry {
                    member_id: h.author.map(|a| a.member_id.to_string()),
                    written_at: h.written_at.map(|t| t.to_rfc3339()),
                    fields: h.fields,
                })
                .collect())
        })
    }
}
