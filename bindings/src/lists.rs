//! The screens' lists and the one-call creation of a young person with their first visit.

use chrono::NaiveDate;
use repere_core::records as model;
use repere_core::{FirstVisit, RecordKind, TodoReason};

use crate::error::{FieldProblem, RepereError, guard};
use crate::records::{NewContact, NewYouth, parse_id};
use crate::roster::{VisitDecision, decision};
use crate::store::{RepereStore, SimilarYouth, YouthSummary, similar_youth, summary};

#[uniffi::remote(Enum)]
pub enum TodoReason {
    NextStepOverdue,
    NextStepDueToday,
    Problems,
    Rejected,
    OpenQuestion,
    Flagged,
    Conflict,
}

/// One line of « à faire », most urgent first.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TodoItem {
    pub reason: TodoReason,
    pub kind: RecordKind,
    pub id: String,
    /// `YYYY-MM-DD`: the due date, the question's day, or the record's own date.
    pub date: Option<String>,
    pub detail: String,
    pub youth_ids: Vec<String>,
    pub youth_names: Vec<String>,
    pub place: Option<String>,
    pub visit_id: Option<String>,
    pub asked_by: Option<String>,
}

/// A visit in the recent visits and in a young person's file.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct VisitSummary {
    pub id: String,
    /// RFC 3339, UTC.
    pub occurred_at: String,
    pub commune: String,
    pub commune_name: String,
    pub kind: String,
    pub youth_ids: Vec<String>,
    pub youth_names: Vec<String>,
    pub tour_id: Option<String>,
    pub next_step_due: Option<String>,
    pub open_questions: u32,
    /// The coordination's latest decision on the visit (the same as `visit_decision`).
    pub decision: Option<VisitDecision>,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TourSummary {
    pub id: String,
    pub date: String,
    pub status: String,
    pub communes: Vec<String>,
    pub commune_names: Vec<String>,
    pub visit_count: u32,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ActionSummary {
    pub id: String,
    pub kind: String,
    pub start_date: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct OutcomeSummary {
    pub id: String,
    pub kind: String,
    pub date: String,
}

/// A coordinator's question waiting for an answer, with the visit it is about.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct QuestionSummary {
    pub id: String,
    pub visit_id: String,
    /// RFC 3339, UTC; `None` if the visit is not on this tablet.
    pub visit_occurred_at: Option<String>,
    pub question: String,
    pub asked_by: String,
    /// RFC 3339, UTC.
    pub asked_at: String,
}

/// A young person's file: who they are, the first page of each list and the totals (the
/// further pages come from `youth_visits`, `youth_actions`…).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct YouthFile {
    pub youth: YouthSummary,
    pub visits: Vec<VisitSummary>,
    pub visit_count: u32,
    pub actions: Vec<ActionSummary>,
    pub action_count: u32,
    pub outcomes: Vec<OutcomeSummary>,
    pub outcome_count: u32,
    pub open_questions: Vec<QuestionSummary>,
    pub open_question_count: u32,
}

/// What `create_youth_with_first_visit` did.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum FirstVisitResult {
    Created {
        youth_id: String,
        visit_id: String,
    },
    /// Nothing was created: show these; call again with `confirmed_new` if it is someone else.
    PossibleDuplicates {
        candidates: Vec<SimilarYouth>,
    },
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn parse_day(field: &str, s: &str) -> Result<NaiveDate, RepereError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        RepereError::validation(vec![FieldProblem {
            field: field.into(),
            code: "bad_format".into(),
            user_message: repere_core::Problem::BadFormat.to_string(),
        }])
    })
}

fn visit(v: repere_core::VisitSummary) -> VisitSummary {
    VisitSummary {
        id: v.id.to_string(),
        occurred_at: v.occurred_at.to_rfc3339(),
        commune: v.commune,
        commune_name: v.commune_name,
        kind: v.kind,
        youth_ids: v.youth_ids.iter().map(ToString::to_string).collect(),
        youth_names: v.youth_names,
        tour_id: v.tour_id.map(|t| t.to_string()),
        next_step_due: v.next_step_due.map(day),
        open_questions: v.open_questions,
        decision: v.decision.map(decision),
    }
}

fn tour(t: repere_core::TourSummary) -> TourSummary {
    TourSummary {
        id: t.id.to_string(),
        date: day(t.date),
        status: t.status,
        communes: t.communes,
        commune_names: t.commune_names,
        visit_count: t.visit_count,
    }
}

fn action(a: repere_core::ActionSummary) -> ActionSummary {
    ActionSummary {
        id: a.id.to_string(),
        kind: a.kind,
        start_date: day(a.start_date),
        status: a.status,
    }
}

fn outcome(o: repere_core::OutcomeSummary) -> OutcomeSummary {
    OutcomeSummary {
        id: o.id.to_string(),
        kind: o.kind,
        date: day(o.date),
    }
}

fn question(q: repere_core::QuestionSummary) -> QuestionSummary {
    QuestionSummary {
        id: q.id.to_string(),
        visit_id: q.visit_id.to_string(),
        visit_occurred_at: q.visit_occurred_at.map(|t| t.to_rfc3339()),
        question: q.question,
        asked_by: q.asked_by,
        asked_at: q.asked_at.to_rfc3339(),
    }
}

#[uniffi::export]
impl RepereStore {
    /// « à faire », most urgent first.
    pub fn todo(&self, offset: u32, limit: u32) -> Result<Vec<TodoItem>, RepereError> {
        guard(|| {
            Ok(self
                .lock()
                .todo(offset as usize, limit as usize)?
                .into_iter()
                .map(|i| TodoItem {
                    reason: i.reason,
                    kind: i.kind,
                    id: i.id.to_string(),
                    date: i.date.map(day),
                    detail: i.detail,
                    youth_ids: i.youth_ids.iter().map(ToString::to_string).collect(),
                    youth_names: i.youth_names,
                    place: i.place,
                    visit_id: i.visit_id.map(|v| v.to_string()),
                    asked_by: i.asked_by,
                })
                .collect())
        })
    }

    /// Visits, most recent first.
    pub fn recent_visits(&self, offset: u32, limit: u32) -> Result<Vec<VisitSummary>, RepereError> {
        guard(|| {
            Ok(self
                .lock()
                .recent_visits(offset as usize, limit as usize)?
                .into_iter()
                .map(visit)
                .collect())
        })
    }

    /// The visits of one day (`YYYY-MM-DD`, as entered on the tablet), in order of time.
    pub fn visits_on(
        &self,
        date: String,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<VisitSummary>, RepereError> {
        guard(|| {
            let day = parse_day("date", &date)?;
            Ok(self
                .lock()
                .visits_on(day, offset as usize, limit as usize)?
                .into_iter()
                .map(visit)
                .collect())
        })
    }

    /// Tours from `from` to `to` (`YYYY-MM-DD`, inclusive), by date.
    pub fn tours_between(
        &self,
        from: String,
        to: String,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<TourSummary>, RepereError> {
        guard(|| {
            let (from, to) = (parse_day("from", &from)?, parse_day("to", &to)?);
            Ok(self
                .lock()
                .tours_between(from, to, offset as usize, limit as usize)?
                .into_iter()
                .map(tour)
                .collect())
        })
    }

    /// The tours of one day (`YYYY-MM-DD`): the day's route for the tour screen.
    pub fn tours_on(&self, date: String) -> Result<Vec<TourSummary>, RepereError> {
        guard(|| {
            let date = parse_day("date", &date)?;
            Ok(self.lock().tours_on(date)?.into_iter().map(tour).collect())
        })
    }

    /// A young person's file with the first `limit` of each list, in one call.
    pub fn youth_file(&self, youth_id: String, limit: u32) -> Result<YouthFile, RepereError> {
        guard(|| {
            let id = parse_id(&youth_id)?;
            let f = self.lock().youth_file(id, limit as usize)?;
            Ok(YouthFile {
                youth: summary(f.youth),
                visits: f.visits.into_iter().map(visit).collect(),
                visit_count: f.visit_count,
                actions: f.actions.into_iter().map(action).collect(),
                action_count: f.action_count,
                outcomes: f.outcomes.into_iter().map(outcome).collect(),
                outcome_count: f.outcome_count,
                open_questions: f.open_questions.into_iter().map(question).collect(),
                open_question_count: f.open_question_count,
            })
        })
    }

    /// A young person's actions, latest start first.
    pub fn youth_actions(
        &self,
        youth_id: String,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<ActionSummary>, RepereError> {
        guard(|| {
            let id = parse_id(&youth_id)?;
            let page = self
                .lock()
                .youth_actions(id, offset as usize, limit as usize)?;
            Ok(page.into_iter().map(action).collect())
        })
    }

    /// A young person's outcomes, latest first.
    pub fn youth_outcomes(
        &self,
        youth_id: String,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<OutcomeSummary>, RepereError> {
        guard(|| {
            let id = parse_id(&youth_id)?;
            let page = self
                .lock()
                .youth_outcomes(id, offset as usize, limit as usize)?;
            Ok(page.into_iter().map(outcome).collect())
        })
    }

    /// The open coordination questions on a young person's visits, oldest first.
    pub fn youth_questions(
        &self,
        youth_id: String,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<QuestionSummary>, RepereError> {
        guard(|| {
            let id = parse_id(&youth_id)?;
            let page = self
                .lock()
                .youth_questions(id, offset as usize, limit as usize)?;
            Ok(page.into_iter().map(question).collect())
        })
    }

    /// A young person's visits, most recent first.
    pub fn youth_visits(
        &self,
        youth_id: String,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<VisitSummary>, RepereError> {
        guard(|| {
            let id = parse_id(&youth_id)?;
            Ok(self
                .lock()
                .youth_visits(id, offset as usize, limit as usize)?
                .into_iter()
                .map(visit)
                .collect())
        })
    }

    /// Creates a young person and their first visit in one transaction, after the
    /// duplicate check (skipped when `confirmed_new`).
    pub fn create_youth_with_first_visit(
        &self,
        youth: NewYouth,
        visit: NewContact,
        confirmed_new: bool,
    ) -> Result<FirstVisitResult, RepereError> {
        guard(|| {
            let youth: model::Youth = youth.try_into()?;
            let visit: model::Contact = visit.try_into()?;
            Ok(
                match self
                    .lock()
                    .create_youth_with_first_visit(&youth, &visit, confirmed_new)?
                {
                    FirstVisit::Created { youth_id, visit_id } => FirstVisitResult::Created {
                        youth_id: youth_id.to_string(),
                        visit_id: visit_id.to_string(),
                    },
                    FirstVisit::PossibleDuplicates(similar) => {
                        FirstVisitResult::PossibleDuplicates {
                            candidates: similar.into_iter().map(similar_youth).collect(),
                        }
                    }
                },
            )
        })
    }
}
