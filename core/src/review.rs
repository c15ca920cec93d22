//! The tablet's side of the review loop and its own indicators.

use chrono::Local;
use rusqlite::params;
use uuid::Uuid;

use crate::error::Result;
use crate::indicators::{self, IndicatorInput, IndicatorQuery, IndicatorReport};
use crate::records::{RecordKind, ReviewTask, ReviewTaskStatus};
use crate::store::Store;

impl Store {
    /// Coordinators' questions, oldest first; only those waiting for an answer if `open_only`.
    pub fn review_tasks(&self, open_only: bool) -> Result<Vec<(Uuid, ReviewTask)>> {
        self.unlocked()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM review_task_index WHERE (?1 = 0 OR status = 'open') ORDER BY asked_at, id",
        )?;
        let ids = stmt.query_map(params![i64::from(open_only)], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for id in ids {
            if let Ok(id) = Uuid::from_slice(&id?) {
                out.push((id, self.get(id)?));
            }
        }
        Ok(out)
    }

    /// Answers a coordinator's question as the current member; the answer syncs back.
    pub fn answer_review_task(&mut self, id: Uuid, answer: &str) -> Result<ReviewTask> {
        let member = self.member_id();
        let now = self.now();
        self.edit::<ReviewTask>(id, |t| {
            t.answer = answer.to_string();
            t.answered_by = Some(member);
            // In the tablet's own time zone, as the question carries the coordinator's.
            t.answered_at = Some(now.with_timezone(&Local).fixed_offset());
            t.status = ReviewTaskStatus::Answered;
        })
    }

    /// Every record the indicators count, read from the documents.
    pub fn indicator_input(&self) -> Result<IndicatorInput> {
        self.unlocked()?;
        let mut input = IndicatorInput::default();
        for (kind, id) in self.ids()? {
            if matches!(
                kind,
                RecordKind::Youth | RecordKind::Contact | RecordKind::Action | RecordKind::Outcome
            ) {
                input.add(id, self.record(id)?);
            }
        }
        Ok(input)
    }

    /// The funder figures over the records on this tablet (its own team's caseload),
    /// computed by the same code as the server's dashboard.
    pub fn indicators(&self, query: &IndicatorQuery) -> Result<IndicatorReport> {
        Ok(indicators::compute(&self.indicator_input()?, query)?)
    }
}
