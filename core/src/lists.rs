//! The lists the tablet's screens show, each paged and sorted, read from the derived
//! tables only (no document is loaded, except a coordinator's question for its text):
//! the tours of a day or a period, a young person's file, the binôme's « à faire » and the
//! recent visits. Also the one-call creation of a young person with their first visit.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::{OptionalExtension, Row, params};
use uuid::Uuid;

use crate::communes::Communes;
use crate::error::{Error, Result};
use crate::records::{Contact, Record, RecordKind, ReviewTask, ValidationContext, Youth};
use crate::roster::VisitDecision;
use crate::search::{DuplicateProbe, SimilarYouth, YOUTH_COLUMNS, YouthSummary, youth_row};
use crate::store::Store;
use crate::sync::protocol::DecisionState;

/// A tour as shown in the list of a day or a period.
#[derive(Debug, Clone, PartialEq)]
pub struct TourSummary {
    pub id: Uuid,
    pub date: NaiveDate,
    pub status: String,
    /// INSEE codes, in route order.
    pub communes: Vec<String>,
    /// Their names, same order ("" for a code the list does not know).
    pub commune_names: Vec<String>,
    pub visit_count: u32,
}

/// A visit as shown in the recent visits and in a young person's file.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitSummary {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub commune: String,
    pub commune_name: String,
    pub kind: String,
    /// The young people met, sorted by name; `youth_names` in the same order.
    pub youth_ids: Vec<Uuid>,
    pub youth_names: Vec<String>,
    pub tour_id: Option<Uuid>,
    /// The due date of the next step agreed, if it has one.
    pub next_step_due: Option<NaiveDate>,
    /// Coordinators' questions on this visit waiting for an answer.
    pub open_questions: u32,
    /// The coordination's latest decision on it (approved, or flagged with its reason), as
    /// `Store::visit_decision` gives it; `None` before any.
    pub decision: Option<VisitDecision>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActionSummary {
    pub id: Uuid,
    pub kind: String,
    pub start_date: NaiveDate,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeSummary {
    pub id: Uuid,
    pub kind: String,
    pub date: NaiveDate,
}

/// A coordinator's question waiting for an answer, with the visit it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionSummary {
    pub id: Uuid,
    pub visit_id: Uuid,
    pub visit_occurred_at: Option<DateTime<Utc>>,
    pub question: String,
    pub asked_by: String,
    pub asked_at: DateTime<Utc>,
}

/// A young person's file: who they are and the first page of each list, with the totals
/// (the further pages come from `youth_visits`, `youth_actions`…).
#[derive(Debug, Clone, PartialEq)]
pub struct YouthFile {
    pub youth: YouthSummary,
    /// Most recent first.
    pub visits: Vec<VisitSummary>,
    pub visit_count: u32,
    /// Latest start first.
    pub actions: Vec<ActionSummary>,
    pub action_count: u32,
    /// Latest first.
    pub outcomes: Vec<OutcomeSummary>,
    pub outcome_count: u32,
    /// Open questions on their visits, oldest first.
    pub open_questions: Vec<QuestionSummary>,
    pub open_question_count: u32,
}

/// Why an item is in « à faire », most urgent first: what is late for a young person,
/// then what keeps a record from reaching the server, then what someone waits for, then
/// what only needs a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TodoReason {
    /// A visit's next step whose due date has passed (the most overdue first).
    NextStepOverdue,
    /// A visit's next step due today.
    NextStepDueToday,
    /// Two valid edits merged into an invalid record (`Store::problems`): it cannot be sent
    /// until fixed.
    Problems,
    /// The server refused the record's last push; `detail` is its reason, safe to show.
    Rejected,
    /// A coordinator's question waiting for the binôme's answer (the oldest first).
    OpenQuestion,
    /// A visit the coordination flagged; `detail` is its reason (the newest first).
    Flagged,
    /// Fields edited on two tablets at once (`Store::conflicts`): pick a value.
    Conflict,
}

/// One line of « à faire »: the record to open, why, and what the screen shows of it.
#[derive(Debug, Clone, PartialEq)]
pub struct TodoItem {
    pub reason: TodoReason,
    pub kind: RecordKind,
    pub id: Uuid,
    /// The due date of a next step, the day of a question, otherwise the record's own
    /// date (the visit's UTC day, the first contact, the tour's, the action's start…).
    pub date: Option<NaiveDate>,
    /// The next step, the server's reason, the problems, the question, or the fields in
    /// conflict (", "-joined schema names).
    pub detail: String,
    /// Who it is about (for a question or a next step: the visit's young people).
    pub youth_ids: Vec<Uuid>,
    pub youth_names: Vec<String>,
    /// The visit's commune, the young person's home commune, or the tour's route.
    pub place: Option<String>,
    /// The visit a question or a next step is about.
    pub visit_id: Option<Uuid>,
    /// The coordinator who asked a question.
    pub asked_by: Option<String>,
}

/// What `create_youth_with_first_visit` did.
#[derive(Debug, Clone, PartialEq)]
pub enum FirstVisit {
    Created {
        youth_id: Uuid,
        visit_id: Uuid,
    },
    /// Nothing was created: these young people may be the same person, best first. Show
    /// them; call again with `confirmed_new` if the user says it is someone else.
    PossibleDuplicates(Vec<SimilarYouth>),
}

/// How many possible duplicates the one-call creation offers at most.
pub const DUPLICATES_SHOWN: usize = 5;

/// Joins each visit's young people (id as hex, name) in name order: one subquery, so
/// the ids and names keep the same order. Their ids are cut from `c.youth_ids` (16 bytes
/// each, one after another) by a recursive count. The decision's columns come from
/// `VISIT_DECISION_JOIN`, which every query of these columns adds after `contact_index c`.
const VISIT_COLUMNS: &str = "c.id, c.occurred_at, c.commune, c.kind, c.tour_id,
    (SELECT group_concat(hex(y.id) || char(30) || y.display_name, char(31))
       FROM (WITH RECURSIVE k(i) AS (
                SELECT 1 UNION ALL SELECT i + 16 FROM k WHERE i + 16 <= length(c.youth_ids))
             SELECT y.id, y.display_name FROM k
               JOIN youth_index y ON y.id = substr(c.youth_ids, k.i, 16)
              ORDER BY y.display_name, y.id) y),
    c.next_step_due,
    (SELECT count(*) FROM review_task_index r WHERE r.contact_id = c.id AND r.status = 'open'),
    d.state, d.reason, d.at_ms";

/// At most one row per visit (`contact_id` is the table's key).
const VISIT_DECISION_JOIN: &str = "LEFT JOIN visit_decisions d ON d.contact_id = c.id";

fn uuid_col(row: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    Ok(Uuid::from_slice(&row.get::<_, Vec<u8>>(i)?).unwrap_or_default())
}

fn date_col(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<NaiveDate>> {
    Ok(row
        .get::<_, Option<String>>(i)?
        .and_then(|s| s.parse().ok()))
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn commune_name(code: &str) -> String {
    Communes::global()
        .get(code)
        .map(|c| c.name.to_string())
        .unwrap_or_default()
}

/// `hex(id) \x1e name` items joined by `\x1f`, as `VISIT_COLUMNS` builds them.
fn youth_pairs(joined: Option<String>) -> (Vec<Uuid>, Vec<String>) {
    let mut ids = Vec::new();
    let mut names = Vec::new();
    for item in joined.as_deref().unwrap_or_default().split('\u{1f}') {
        if let Some((hex, name)) = item.split_once('\u{1e}')
            && let Ok(id) = Uuid::try_parse(hex)
        {
            ids.push(id);
            names.push(name.to_string());
        }
    }
    (ids, names)
}

fn visit_row(row: &Row<'_>) -> rusqlite::Result<VisitSummary> {
    let id = uuid_col(row, 0)?;
    let commune: String = row.get(2)?;
    let (youth_ids, youth_names) = youth_pairs(row.get(5)?);
    // A state this version cannot name is left out, as `Store::visit_decision` does.
    let decision = match (
        row.get::<_, Option<String>>(8)?,
        row.get::<_, Option<String>>(9)?,
        row.get::<_, Option<i64>>(10)?,
    ) {
        (Some(state), Some(reason), Some(at_ms)) => DecisionState::parse(&state)
            .zip(DateTime::from_timestamp_millis(at_ms))
            .map(|(state, at)| VisitDecision {
                contact_id: id,
                state,
                reason,
                at,
            }),
        _ => None,
    };
    Ok(VisitSummary {
        id,
        occurred_at: instant(&row.get::<_, String>(1)?).unwrap_or(DateTime::<Utc>::MIN_UTC),
        commune_name: commune_name(&commune),
        commune,
        kind: row.get(3)?,
        tour_id: row
            .get::<_, Option<Vec<u8>>>(4)?
            .and_then(|b| Uuid::from_slice(&b).ok()),
        youth_ids,
        youth_names,
        next_step_due: date_col(row, 6)?,
        open_questions: row.get(7)?,
        decision,
    })
}

fn tour_row(row: &Row<'_>) -> rusqlite::Result<TourSummary> {
    let communes: Vec<String> = row
        .get::<_, String>(3)?
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    Ok(TourSummary {
        id: uuid_col(row, 0)?,
        date: date_col(row, 1)?.unwrap_or(NaiveDate::MIN),
        status: row.get(2)?,
        commune_names: communes.iter().map(|c| commune_name(c)).collect(),
        communes,
        visit_count: row.get(4)?,
    })
}

const TOUR_COLUMNS: &str = "t.id, t.date, t.status, t.communes,
    (SELECT count(*) FROM contact_index c WHERE c.tour_id = t.id)";

/// One source of « à faire »: rows of (kind, id, date, detail) in the source's order,
/// `LIMIT ?n OFFSET ?n+1` last; `today` binds `?1` when the source needs it.
struct TodoSource {
    reason: TodoReason,
    rows: &'static str,
    count: &'static str,
    today: bool,
}

const TODO_SOURCES: &[TodoSource] = &[
    TodoSource {
        reason: TodoReason::NextStepOverdue,
        rows: "SELECT 'contact', id, open_due, next_step FROM contact_index
                WHERE open_due < ?1 ORDER BY open_due, id LIMIT ?2 OFFSET ?3",
        count: "SELECT count(*) FROM contact_index WHERE open_due < ?1",
        today: true,
    },
    TodoSource {
        reason: TodoReason::NextStepDueToday,
        rows: "SELECT 'contact', id, open_due, next_step FROM contact_index
                WHERE open_due = ?1 ORDER BY id LIMIT ?2 OFFSET ?3",
        count: "SELECT count(*) FROM contact_index WHERE open_due = ?1",
        today: true,
    },
    TodoSource {
        reason: TodoReason::Problems,
        rows: "SELECT kind, id, NULL, problems FROM documents
                WHERE problems IS NOT NULL ORDER BY local_seq LIMIT ?1 OFFSET ?2",
        count: "SELECT count(*) FROM documents WHERE problems IS NOT NULL",
        today: false,
    },
    // A refused record with problems is listed once, for its problems (they say why).
    TodoSource {
        reason: TodoReason::Rejected,
        rows: "SELECT kind, id, NULL, coalesce(reject_reason, '') FROM documents
                WHERE sync_state = 3 AND problems IS NULL ORDER BY local_seq LIMIT ?1 OFFSET ?2",
        count: "SELECT count(*) FROM documents WHERE sync_state = 3 AND problems IS NULL",
        today: false,
    },
    TodoSource {
        reason: TodoReason::OpenQuestion,
        rows: "SELECT 'review_task', id, substr(asked_at, 1, 10), '' FROM review_task_index
                WHERE status = 'open' ORDER BY asked_at, id LIMIT ?1 OFFSET ?2",
        count: "SELECT count(*) FROM review_task_index WHERE status = 'open'",
        today: false,
    },
    // Only visits this tablet holds: a decision can arrive before its visit.
    TodoSource {
        reason: TodoReason::Flagged,
        rows: "SELECT 'contact', contact_id, date(at_ms / 1000, 'unixepoch'), reason
                 FROM visit_decisions
                WHERE state = 'flagged' AND EXISTS (SELECT 1 FROM documents WHERE id = contact_id)
                ORDER BY at_ms DESC, contact_id LIMIT ?1 OFFSET ?2",
        count: "SELECT count(*) FROM visit_decisions
                WHERE state = 'flagged' AND EXISTS (SELECT 1 FROM documents WHERE id = contact_id)",
        today: false,
    },
    TodoSource {
        reason: TodoReason::Conflict,
        rows: "SELECT kind, id, NULL, conflicts FROM documents
                WHERE conflicts IS NOT NULL ORDER BY local_seq LIMIT ?1 OFFSET ?2",
        count: "SELECT count(*) FROM documents WHERE conflicts IS NOT NULL",
        today: false,
    },
];

/// What the young person's file pages through.
#[derive(Debug, Clone, Copy)]
enum FilePart {
    Actions,
    Outcomes,
}

impl Store {
    /// The tours of one day, by id (a team rarely has more than two).
    pub fn tours_on(&self, date: NaiveDate) -> Result<Vec<TourSummary>> {
        self.tours_between(date, date, 0, usize::MAX)
    }

    /// The tours from `from` to `to` inclusive, by date then id.
    pub fn tours_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<TourSummary>> {
        self.unlocked()?;
        let sql = format!(
            "SELECT {TOUR_COLUMNS} FROM tour_index t WHERE t.date BETWEEN ?1 AND ?2
              ORDER BY t.date, t.id LIMIT ?3 OFFSET ?4"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                from.to_string(),
                to.to_string(),
                sql_limit(limit),
                sql_limit(offset)
            ],
            tour_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Visits, most recent first, with who was met and what is pending on each.
    pub fn recent_visits(&self, offset: usize, limit: usize) -> Result<Vec<VisitSummary>> {
        self.unlocked()?;
        let sql = format!(
            "SELECT {VISIT_COLUMNS} FROM contact_index c {VISIT_DECISION_JOIN}
              ORDER BY c.occurred_at DESC, c.id LIMIT ?1 OFFSET ?2"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(params![sql_limit(limit), sql_limit(offset)], visit_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The visits of `day` (as entered on the tablet, in its own time zone), in order of
    /// time: the tour screen's « visites du jour ».
    pub fn visits_on(
        &self,
        day: NaiveDate,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<VisitSummary>> {
        self.unlocked()?;
        let sql = format!(
            "SELECT {VISIT_COLUMNS} FROM contact_index c {VISIT_DECISION_JOIN}
              WHERE c.occurred_at >= ?2 AND c.occurred_at < ?3 AND c.local_day = ?1
              ORDER BY c.at_secs, c.at_nanos, c.id LIMIT ?4 OFFSET ?5"
        );
        // A day entered at any UTC offset (less than a day either way) lies within the
        // UTC days before, of and after it: a range of the visits' key.
        let utc_day = |d: Option<NaiveDate>| {
            d.and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true))
        };
        let from = utc_day(day.pred_opt()).unwrap_or_default();
        // "~" sorts after any RFC 3339 text.
        let until = utc_day(day.succ_opt().and_then(|d| d.succ_opt())).unwrap_or("~".into());
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                day.to_string(),
                from,
                until,
                sql_limit(limit),
                sql_limit(offset)
            ],
            visit_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A young person's file: their summary and the first `limit` items of each list.
    pub fn youth_file(&self, youth_id: Uuid, limit: usize) -> Result<YouthFile> {
        self.unlocked()?;
        let today = self.now().date_naive();
        let sql = format!("SELECT {YOUTH_COLUMNS} FROM youth_index y WHERE y.id = ?1");
        let mut youth = self
            .conn()
            .prepare_cached(&sql)?
            .query_row([youth_id.as_bytes().as_slice()], |r| youth_row(r, today))
            .optional()?
            .ok_or(Error::NotFound {
                kind: RecordKind::Youth,
                id: youth_id,
            })?;
        self.fill_contact_counts(std::slice::from_mut(&mut youth))?;
        Ok(YouthFile {
            visit_count: youth.contact_count,
            youth,
            visits: self.youth_visits(youth_id, 0, limit)?,
            actions: self.youth_actions(youth_id, 0, limit)?,
            action_count: self.file_count(FilePart::Actions, youth_id)?,
            outcomes: self.youth_outcomes(youth_id, 0, limit)?,
            outcome_count: self.file_count(FilePart::Outcomes, youth_id)?,
            open_questions: self.youth_questions(youth_id, 0, limit)?,
            open_question_count: self.youth_question_count(youth_id)?,
        })
    }

    /// A young person's visits, most recent first.
    pub fn youth_visits(
        &self,
        youth_id: Uuid,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<VisitSummary>> {
        self.unlocked()?;
        let sql = format!(
            "SELECT {VISIT_COLUMNS} FROM contact_youth v
               JOIN contact_index c ON c.occurred_at = v.occurred_at AND c.id = v.contact_id
              {VISIT_DECISION_JOIN}
              WHERE v.youth_id = ?1 ORDER BY v.occurred_at DESC, v.contact_id LIMIT ?2 OFFSET ?3"
        );
        self.youth_page(&sql, youth_id, offset, limit, visit_row)
    }

    /// A young person's mobilisation actions, latest start first.
    pub fn youth_actions(
        &self,
        youth_id: Uuid,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ActionSummary>> {
        self.unlocked()?;
        self.youth_page(
            "SELECT id, kind, start_date, status FROM action_index WHERE youth_id = ?1
              ORDER BY start_date DESC, id LIMIT ?2 OFFSET ?3",
            youth_id,
            offset,
            limit,
            |r| {
                Ok(ActionSummary {
                    id: uuid_col(r, 0)?,
                    kind: r.get(1)?,
                    start_date: date_col(r, 2)?.unwrap_or(NaiveDate::MIN),
                    status: r.get(3)?,
                })
            },
        )
    }

    /// A young person's outcomes, latest first.
    pub fn youth_outcomes(
        &self,
        youth_id: Uuid,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<OutcomeSummary>> {
        self.unlocked()?;
        self.youth_page(
            "SELECT id, kind, date FROM outcome_index WHERE youth_id = ?1
              ORDER BY date DESC, id LIMIT ?2 OFFSET ?3",
            youth_id,
            offset,
            limit,
            |r| {
                Ok(OutcomeSummary {
                    id: uuid_col(r, 0)?,
                    kind: r.get(1)?,
                    date: date_col(r, 2)?.unwrap_or(NaiveDate::MIN),
                })
            },
        )
    }

    /// Coordinators' questions waiting for an answer on a young person's visits, oldest
    /// first.
    pub fn youth_questions(
        &self,
        youth_id: Uuid,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<QuestionSummary>> {
        self.unlocked()?;
        let ids: Vec<(Uuid, Option<String>)> = self.youth_page(
            "SELECT r.id, v.occurred_at FROM contact_youth v
               JOIN review_task_index r ON r.contact_id = v.contact_id AND r.status = 'open'
              WHERE v.youth_id = ?1 ORDER BY r.asked_at, r.id LIMIT ?2 OFFSET ?3",
            youth_id,
            offset,
            limit,
            |r| Ok((uuid_col(r, 0)?, r.get(1)?)),
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, visit_at) in ids {
            let task: ReviewTask = self.get(id)?;
            out.push(QuestionSummary {
                id,
                visit_id: task.contact_id,
                visit_occurred_at: visit_at.as_deref().and_then(instant),
                question: task.question,
                asked_by: task.asked_by,
                asked_at: task.asked_at.with_timezone(&Utc),
            });
        }
        Ok(out)
    }

    fn youth_question_count(&self, youth_id: Uuid) -> Result<u32> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT count(*) FROM contact_youth v
               JOIN review_task_index r ON r.contact_id = v.contact_id AND r.status = 'open'
              WHERE v.youth_id = ?1",
            )?
            .query_row([youth_id.as_bytes().as_slice()], |r| r.get(0))?)
    }

    fn file_count(&self, part: FilePart, youth_id: Uuid) -> Result<u32> {
        let sql = match part {
            FilePart::Actions => "SELECT count(*) FROM action_index WHERE youth_id = ?1",
            FilePart::Outcomes => "SELECT count(*) FROM outcome_index WHERE youth_id = ?1",
        };
        Ok(self
            .conn()
            .prepare_cached(sql)?
            .query_row([youth_id.as_bytes().as_slice()], |r| r.get(0))?)
    }

    /// The binôme's « à faire », most urgent first (see `TodoReason` for the order):
    /// next steps overdue or due today (as of the store's clock, `Store::now`) that no
    /// later visit of the same young people took over, records refused by the server or
    /// invalid as merged, coordinators' questions waiting for an answer, records in
    /// conflict. Erased records are gone from every source.
    pub fn todo(&self, offset: usize, limit: usize) -> Result<Vec<TodoItem>> {
        self.unlocked()?;
        let today = self.now().date_naive().to_string();
        let mut skip = offset;
        let mut left = limit;
        let mut raw: Vec<(TodoReason, String, Uuid, Option<String>, String)> = Vec::new();
        for source in TODO_SOURCES {
            if left == 0 {
                break;
            }
            let mut stmt = self.conn().prepare_cached(source.rows)?;
            let map = |r: &Row<'_>| {
                Ok((
                    source.reason,
                    r.get::<_, String>(0)?,
                    uuid_col(r, 1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                ))
            };
            let (take, from) = (sql_limit(left), sql_limit(skip));
            let rows: Vec<_> = if source.today {
                stmt.query_map(params![today, take, from], map)?
                    .collect::<rusqlite::Result<_>>()?
            } else {
                stmt.query_map(params![take, from], map)?
                    .collect::<rusqlite::Result<_>>()?
            };
            if rows.is_empty() {
                if skip > 0 {
                    // The whole source lies before the page: skip past it.
                    let mut count = self.conn().prepare_cached(source.count)?;
                    let n: i64 = if source.today {
                        count.query_row([&today], |r| r.get(0))?
                    } else {
                        count.query_row([], |r| r.get(0))?
                    };
                    skip = skip.saturating_sub(n as usize);
                }
                continue;
            }
            skip = 0;
            left -= rows.len();
            raw.extend(rows);
        }
        let mut out = Vec::with_capacity(raw.len());
        for (reason, kind, id, date, detail) in raw {
            let Some(kind) = RecordKind::parse(&kind) else {
                continue;
            };
            out.push(self.todo_item(reason, kind, id, date, detail)?);
        }
        Ok(out)
    }

    /// Fills a « à faire » line with what the screen shows of its record.
    fn todo_item(
        &self,
        reason: TodoReason,
        kind: RecordKind,
        id: Uuid,
        date: Option<String>,
        detail: String,
    ) -> Result<TodoItem> {
        let mut item = TodoItem {
            reason,
            kind,
            id,
            date: date.and_then(|d| d.parse().ok()),
            detail,
            youth_ids: Vec::new(),
            youth_names: Vec::new(),
            place: None,
            visit_id: None,
            asked_by: None,
        };
        let bid = id.as_bytes().as_slice();
        let conn = self.conn();
        match kind {
            RecordKind::Contact => {
                self.fill_from_visit(&mut item, id)?;
                if matches!(
                    reason,
                    TodoReason::NextStepOverdue | TodoReason::NextStepDueToday
                ) {
                    item.visit_id = Some(id);
                }
            }
            RecordKind::ReviewTask => {
                let task: ReviewTask = self.get(id)?;
                item.detail = task.question;
                item.asked_by = Some(task.asked_by);
                item.visit_id = Some(task.contact_id);
                let own_date = item.date;
                self.fill_from_visit(&mut item, task.contact_id)?;
                item.date = own_date.or(Some(task.asked_at.date_naive()));
            }
            RecordKind::Youth => {
                let row: Option<(String, Option<String>, Option<String>)> = conn
                    .prepare_cached(
                        "SELECT display_name, home_commune, first_contact_date
                           FROM youth_index WHERE id = ?1",
                    )?
                    .query_row([bid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                if let Some((name, commune, first)) = row {
                    item.youth_ids = vec![id];
                    item.youth_names = vec![name];
                    item.place = commune.as_deref().map(commune_name);
                    item.date = item.date.or(first.and_then(|d| d.parse().ok()));
                }
            }
            RecordKind::Tour => {
                let row: Option<(String, String)> = conn
                    .prepare_cached("SELECT date, communes FROM tour_index WHERE id = ?1")?
                    .query_row([bid], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((date, communes)) = row {
                    item.date = item.date.or(date.parse().ok());
                    let route: Vec<String> = communes
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(commune_name)
                        .collect();
                    item.place = (!route.is_empty()).then(|| route.join(" → "));
                }
            }
            RecordKind::Action | RecordKind::Outcome => {
                let sql = if kind == RecordKind::Action {
                    "SELECT a.start_date, y.id, y.display_name FROM action_index a
                       LEFT JOIN youth_index y ON y.id = a.youth_id WHERE a.id = ?1"
                } else {
                    "SELECT o.date, y.id, y.display_name FROM outcome_index o
                       LEFT JOIN youth_index y ON y.id = o.youth_id WHERE o.id = ?1"
                };
                let row: Option<(String, Option<Vec<u8>>, Option<String>)> = conn
                    .prepare_cached(sql)?
                    .query_row([bid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                if let Some((date, youth, name)) = row {
                    item.date = item.date.or(date.parse().ok());
                    if let (Some(y), Some(name)) =
                        (youth.and_then(|b| Uuid::from_slice(&b).ok()), name)
                    {
                        item.youth_ids = vec![y];
                        item.youth_names = vec![name];
                    }
                }
            }
        }
        Ok(item)
    }

    /// Who a visit met and where, for a « à faire » line about it (or about its question).
    fn fill_from_visit(&self, item: &mut TodoItem, visit_id: Uuid) -> Result<()> {
        // A visit's row is keyed by its time, which its document's row keeps.
        let sql = format!(
            "SELECT {VISIT_COLUMNS} FROM documents doc
               JOIN contact_index c ON c.occurred_at = doc.derived_key AND c.id = doc.id
              {VISIT_DECISION_JOIN} WHERE doc.id = ?1"
        );
        let visit = self
            .conn()
            .prepare_cached(&sql)?
            .query_row([visit_id.as_bytes().as_slice()], visit_row)
            .optional()?;
        if let Some(v) = visit {
            item.youth_ids = v.youth_ids;
            item.youth_names = v.youth_names;
            item.place = Some(v.commune_name).filter(|n| !n.is_empty());
            item.date = item.date.or(Some(v.occurred_at.date_naive()));
        }
        Ok(())
    }

    /// One page of a query over a young person's rows (`?1` the id, `?2` limit, `?3` offset).
    fn youth_page<T>(
        &self,
        sql: &str,
        youth_id: Uuid,
        offset: usize,
        limit: usize,
        row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut stmt = self.conn().prepare_cached(sql)?;
        let rows = stmt.query_map(
            params![
                youth_id.as_bytes().as_slice(),
                sql_limit(limit),
                sql_limit(offset)
            ],
            row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Creates a young person and their first visit in one transaction, as the creation
    /// screen does: the duplicate check (`find_similar_youth`) runs first and, unless the
    /// user confirmed it is a new person (`confirmed_new`), possible duplicates are returned
    /// and nothing is created. The visit is given the new young person's id (besides any
    /// it already names, for a group). Both records are validated before anything is
    /// written: their problems come together in one `Invalid` (the visit's fields keep
    /// their own names; `team_id` may then appear twice).
    pub fn create_youth_with_first_visit(
        &mut self,
        youth: &Youth,
        visit: &Contact,
        confirmed_new: bool,
    ) -> Result<FirstVisit> {
        self.unlocked()?;
        let ctx = ValidationContext {
            now: self.now(),
            communes: Communes::global(),
        };
        let mut errors = youth.validate(&ctx).err().unwrap_or_default();
        // Validated as it will be stored, with the new young person among those met: their
        // id is made by the create below, so a stand-in takes its place until then.
        let mut visit = visit.clone();
        let stand_in = Uuid::now_v7();
        visit.youth_ids.insert(stand_in);
        if let Err(e) = visit.validate(&ctx) {
            errors.0.extend(e.0);
        }
        errors.into_result().map_err(Error::Invalid)?;
        if !confirmed_new {
            let similar = self.find_similar_youth(&probe_of(youth), DUPLICATES_SHOWN)?;
            if !similar.is_empty() {
                return Ok(FirstVisit::PossibleDuplicates(similar));
            }
        }
        self.batch(|b| {
            let youth_id = b.create(youth)?;
            visit.youth_ids.remove(&stand_in);
            visit.youth_ids.insert(youth_id);
            let visit_id = b.create(&visit)?;
            Ok(FirstVisit::Created { youth_id, visit_id })
        })
    }
}

/// What the duplicate check knows of a young person about to be created.
pub fn probe_of(youth: &Youth) -> DuplicateProbe {
    DuplicateProbe {
        first_name: youth.first_name.clone(),
        alias: youth.alias.clone(),
        last_name: youth.last_name.clone(),
        birth_year: youth
            .birth_year
            .or(youth.birth_date.map(|d| chrono::Datelike::year(&d))),
        home_commune: youth.home_commune.clone(),
    }
}

/// SQLite takes a signed 64-bit limit; `usize::MAX` means "all".
fn sql_limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
