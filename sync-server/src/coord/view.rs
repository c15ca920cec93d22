//! What the coordinators read: the derived `record_view` (kept up to date by following
//! the log), the visits to review, a visit with its history, conflicts and questions, and
//! young people's files. Every query is limited to the coordinator's teams.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use repere_core::Communes;
use repere_core::document::{Author, FieldConflict, HistoryEntry, RecordDoc};
use repere_core::indicators::{
    self, ActionFacts, ContactFacts, IndicatorInput, OutcomeFacts, YouthFacts,
};
use repere_core::records::{
    Action, AnyRecord, Contact, Outcome, RecordKind, ReviewTask, ReviewTaskStatus, Youth,
    YouthStatus,
};
use repere_core::text::fold;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::audit::{self, Audit};
use super::reports::serde_id;
use super::{Coordinator, PAGE_SIZE, Workspace};
use crate::hub::HubError;
use crate::storage::{
    AuditEntry, LogEntry, ReadTx, StoredDocument, Team, Tx, ViewRecord, ViewWrite, VisitFilter,
    VisitReview, VisitState, YouthFilter, YouthSummary,
};

/// Documents projected per write transaction while catching up (sync waits meanwhile).
const REFRESH_BATCH: usize = 500;

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
    /// 1-based.
    pub page: usize,
    pub pages: usize,
}

impl<T> Paged<T> {
    pub fn new(items: Vec<T>, total: u64, page: usize) -> Paged<T> {
        let pages = usize::try_from(total)
            .unwrap_or(usize::MAX)
            .div_ceil(PAGE_SIZE)
            .max(1);
        Paged {
            items,
            total,
            page,
            pages,
        }
    }
}

/// The server reads documents as a nil actor.
pub(crate) fn reader() -> Author {
    Author {
        device_id: Uuid::nil(),
        member_id: Uuid::nil(),
    }
}

/// The record's fields as JSON, or `None` if its document cannot be read.
fn project(doc: &StoredDocument) -> Option<ViewWrite> {
    let loaded = RecordDoc::load(doc.kind, doc.id, &doc.doc, reader()).ok()?;
    let record = loaded.read_record().ok()?;
    view_write(&record, doc.id, doc.team_id, doc.seq, doc.received_at)
}

/// A record's derived row: its fields as JSON and the columns the pages filter and join on.
pub fn view_write(
    record: &AnyRecord,
    id: Uuid,
    team_id: Uuid,
    seq: u64,
    received_at: DateTime<Utc>,
) -> Option<ViewWrite> {
    let fields = record.to_json().ok()?.to_string();
    let mut row = ViewWrite {
        record: ViewRecord {
            id,
            kind: record.kind(),
            team_id,
            seq,
            received_at,
            fields,
        },
        day: None,
        at_ms: None,
        commune: None,
        ref_id: None,
        youth_ids: Vec::new(),
    };
    match record {
        AnyRecord::Youth(y) => row.commune = y.home_commune.clone(),
        AnyRecord::Contact(c) => {
            row.day = Some(c.occurred_at.date_naive());
            row.at_ms = Some(c.occurred_at.timestamp_millis());
            row.commune = Some(c.commune.clone());
            row.youth_ids = c.youth_ids.iter().copied().collect();
        }
        AnyRecord::Action(a) => row.ref_id = Some(a.youth_id),
        AnyRecord::Outcome(o) => row.ref_id = Some(o.youth_id),
        AnyRecord::ReviewTask(t) => row.ref_id = Some(t.contact_id),
        AnyRecord::Tour(_) => {}
    }
    Some(row)
}

/// A derived record's typed value (`None` if it does not read as `R`).
pub fn decode<R: DeserializeOwned>(v: &ViewRecord) -> Option<R> {
    serde_json::from_str(&v.fields).ok()
}

pub(crate) fn decode_any(v: &ViewRecord) -> Option<AnyRecord> {
    AnyRecord::from_fields(v.kind, serde_json::from_str(&v.fields).ok()?).ok()
}

/// INSEE codes a typed commune filter means: the code itself, else the communes whose
/// name is the one typed (accents and case aside), else those whose name starts with it.
pub fn resolve_communes(typed: &str) -> Vec<String> {
    let typed = typed.trim();
    let communes = Communes::global();
    if let Some(c) = communes.get(&typed.to_uppercase()) {
        return vec![c.code.to_string()];
    }
    let found = communes.search_name(typed, 500);
    let wanted = fold(typed);
    let exact: Vec<String> = found
        .iter()
        .filter(|c| fold(c.name) == wanted)
        .map(|c| c.code.to_string())
        .collect();
    if exact.is_empty() {
        found.iter().map(|c| c.code.to_string()).collect()
    } else {
        exact
    }
}

/// The name of a commune from its INSEE code (the code itself if unknown).
pub fn commune_name(code: &str) -> String {
    Communes::global()
        .get(code)
        .map_or_else(|| code.to_string(), |c| c.name.to_string())
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitQuery {
    pub team: Option<Uuid>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// An INSEE code or a commune name.
    pub commune: Option<String>,
    pub state: Option<VisitState>,
    /// 1-based.
    pub page: usize,
}

/// A visit in the list.
#[derive(Debug, Clone)]
pub struct VisitItem {
    pub id: Uuid,
    pub team_id: Uuid,
    pub contact: Contact,
    /// The young people met, with their display names.
    pub youth: Vec<(Uuid, String)>,
    pub state: VisitState,
    /// Questions about it waiting for the binôme, and answered ones not closed yet.
    pub open_questions: usize,
    pub answered_questions: usize,
}

/// A young person as a visit shows them.
#[derive(Debug, Clone)]
pub struct YouthCard {
    pub id: Uuid,
    pub youth: Youth,
    pub age: Option<i32>,
}

/// Everything the visit page shows.
#[derive(Debug, Clone)]
pub struct VisitDetail {
    pub id: Uuid,
    pub team: Team,
    pub contact: Contact,
    /// Server time of the last stored change.
    pub received_at: DateTime<Utc>,
    pub youth: Vec<YouthCard>,
    pub history: Vec<HistoryEntry>,
    /// When the server stored each change, and from which device.
    pub receipts: Vec<LogEntry>,
    pub conflicts: Vec<FieldConflict>,
    /// Questions about the visit, oldest first.
    pub tasks: Vec<(Uuid, ReviewTask)>,
    pub review: Option<VisitReview>,
    pub state: VisitState,
    /// Review actions taken on it (from the audit log), newest first.
    pub events: Vec<AuditEntry>,
    /// Names of the organisation's users (coordinators write as their user id).
    pub users: HashMap<Uuid, String>,
    /// The team's tablets by writer id (the device part of their Automerge actors),
    /// with their labels: a change's tablet is the server's check, not the tablet's word.
    pub tablets: HashMap<Uuid, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YouthQuery {
    pub team: Option<Uuid>,
    pub status: Option<YouthStatus>,
    /// Words of a name, alias or commune.
    pub search: Option<String>,
    pub page: usize,
}

#[derive(Debug, Clone)]
pub struct YouthItem {
    pub id: Uuid,
    pub team_id: Uuid,
    pub youth: Youth,
    pub contacts: usize,
    pub actions: usize,
    pub outcomes: usize,
    pub last_contact: Option<NaiveDate>,
}

#[derive(Debug, Clone)]
pub struct YouthDetail {
    pub id: Uuid,
    pub team: Team,
    pub youth: Youth,
    pub age: Option<i32>,
    /// Newest first, with each visit's review state.
    pub contacts: Vec<(Uuid, Contact, VisitState)>,
    pub actions: Vec<(Uuid, Action)>,
    pub outcomes: Vec<(Uuid, Outcome)>,
    /// The file's own conflicting fields (concurrent edits on two tablets).
    pub conflicts: Vec<FieldConflict>,
    /// The conflicting fields of its actions and outcomes, by record id (only those with
    /// some).
    pub record_conflicts: HashMap<Uuid, Vec<FieldConflict>>,
    /// Names of the organisation's users, and the tablets of the teams of the file, its
    /// actions and outcomes by writer id: who wrote each conflicting value (as on the
    /// visit page).
    pub users: HashMap<Uuid, String>,
    pub tablets: HashMap<Uuid, String>,
}

fn state_of(review: Option<&VisitReview>) -> VisitState {
    review.map_or(VisitState::ToReview, |r| r.state)
}

/// A scoped derived record of `kind`: `None` when unknown, of another kind or out of scope.
pub(crate) fn scoped_view(
    tx: &mut dyn ReadTx,
    who: &Coordinator,
    kind: RecordKind,
    id: Uuid,
) -> Result<Option<ViewRecord>, HubError> {
    Ok(tx
        .view_record(id)?
        .filter(|v| v.kind == kind && who.in_scope(v.team_id)))
}

/// A scoped stored document of `kind`, same rules.
pub(crate) fn scoped_document(
    tx: &mut dyn ReadTx,
    who: &Coordinator,
    kind: RecordKind,
    id: Uuid,
) -> Result<Option<StoredDocument>, HubError> {
    Ok(tx
        .document(id)?
        .filter(|d| d.kind == kind && who.in_scope(d.team_id)))
}

/// The organisation's users' names and the team's tablets' labels by writer id: how the
/// pages name the authors of changes.
#[allow(clippy::type_complexity)]
fn authors(
    tx: &mut dyn ReadTx,
    who: &Coordinator,
    team_id: Uuid,
) -> Result<(HashMap<Uuid, String>, HashMap<Uuid, String>), HubError> {
    let users = tx
        .users()?
        .into_iter()
        .filter(|u| u.organisation_id == who.organisation.id)
        .map(|u| (u.id, u.name))
        .collect();
    let tablets = tx
        .devices(Some(team_id))?
        .into_iter()
        .filter_map(|d| Some((d.writer?, d.label)))
        .collect();
    Ok((users, tablets))
}

/// A stored record's conflicting fields (none when it is not stored).
fn conflicts_of(tx: &mut dyn ReadTx, id: Uuid) -> Result<Vec<FieldConflict>, HubError> {
    Ok(match tx.document(id)? {
        Some(stored) => RecordDoc::load(stored.kind, id, &stored.doc, reader())
            .map_err(|e| HubError::Internal(format!("stored record unreadable: {e}")))?
            .conflicts(),
        None => Vec::new(),
    })
}

fn tasks_of(
    tx: &mut dyn ReadTx,
    who: &Coordinator,
    contact_id: Uuid,
) -> Result<Vec<(Uuid, ReviewTask)>, HubError> {
    let mut tasks: Vec<(Uuid, ReviewTask)> = tx
        .view_by_ref(RecordKind::ReviewTask, contact_id)?
        .into_iter()
        .filter(|v| who.in_scope(v.team_id))
        .filter_map(|v| Some((v.id, decode::<ReviewTask>(&v)?)))
        .collect();
    tasks.sort_by_key(|(id, t)| (t.asked_at, *id));
    Ok(tasks)
}

/// A young person's summary from the view rows of their records (`None` when they are no
/// longer in the view): every visit naming them, whichever team made it, and their actions
/// and outcomes. Their indicator facts are joined by core's `reached`, as on the tablets.
fn summarise(tx: &mut dyn Tx, id: Uuid) -> Result<Option<YouthSummary>, HubError> {
    let Some(view) = tx.view_record(id)?.filter(|v| v.kind == RecordKind::Youth) else {
        return Ok(None);
    };
    let Some(youth) = decode::<Youth>(&view) else {
        return Ok(None);
    };
    let mut input = IndicatorInput::default();
    let mut last_visit: Option<NaiveDate> = None;
    let mut visits = 0u32;
    for v in tx.view_contacts_of_youth(id)? {
        if let Some(c) = decode::<Contact>(&v) {
            let day = c.occurred_at.date_naive();
            last_visit = Some(last_visit.map_or(day, |d| d.max(day)));
            visits = visits.saturating_add(1);
            input.contacts.push(ContactFacts::of(v.id, c));
        }
    }
    let mut actions = 0u32;
    for v in tx.view_by_ref(RecordKind::Action, id)? {
        if let Some(a) = decode::<Action>(&v).filter(|a| a.youth_id == id) {
            actions = actions.saturating_add(1);
            input.actions.push(ActionFacts::of(&a));
        }
    }
    let mut outcomes = 0u32;
    for v in tx.view_by_ref(RecordKind::Outcome, id)? {
        if let Some(o) = decode::<Outcome>(&v).filter(|o| o.youth_id == id) {
            outcomes = outcomes.saturating_add(1);
            input.outcomes.push(OutcomeFacts::of(&o));
        }
    }
    input.youth.push(YouthFacts::of(id, &youth));
    let reached = match indicators::reached(&input).first() {
        Some(r) => Some(
            serde_json::to_string(r)
                .map_err(|e| HubError::Internal(format!("facts not serialisable: {e}")))?,
        ),
        None => None,
    };
    let search = fold(&format!(
        "{} {} {} {} {}",
        youth.display_name(),
        youth.alias.as_deref().unwrap_or_default(),
        youth.first_name.as_deref().unwrap_or_default(),
        youth.last_name.as_deref().unwrap_or_default(),
        youth
            .home_commune
            .as_deref()
            .map(commune_name)
            .unwrap_or_default()
    ));
    Ok(Some(YouthSummary {
        youth_id: id,
        team_id: view.team_id,
        status: serde_id(&youth.status),
        search,
        first_contact: youth.first_contact_date,
        last_visit,
        visits,
        actions,
        outcomes,
        reached,
    }))
}

impl Workspace {
    /// Brings `record_view` up to the end of the log, and the young people's summaries
    /// up to their records' view rows. Cheap when nothing changed.
    pub fn refresh_view(&self) -> Result<usize, HubError> {
        let mut projected = 0;
        loop {
            let behind = self
                .hub()
                .storage()
                .read_with(|tx| -> Result<_, HubError> {
                    Ok(tx.view_seq()? < tx.last_seq()? || !tx.dirty_youth(1)?.is_empty())
                })?;
            if !behind {
                return Ok(projected);
            }
            let (n, summarised) = self.hub().storage().write_with(|tx| -> Result<_, HubError> {
                let from = tx.view_seq()?;
                let docs = tx.documents_since(from, REFRESH_BATCH)?;
                match docs.last().map(|d| d.seq) {
                    Some(last) => {
                        for doc in &docs {
                            match project(doc) {
                                Some(row) => tx.put_view(&row)?,
                                None => {
                                    tracing::warn!(record = %doc.id, "stored document cannot be read for the coordinators' view");
                                    tx.delete_view(doc.id)?;
                                }
                            }
                        }
                        tx.set_view_seq(last)?;
                    }
                    // Only erasures left: their rows went with them.
                    None => {
                        let end = tx.last_seq()?;
                        tx.set_view_seq(end)?;
                    }
                }
                // In the same transaction as the view rows that marked them.
                let dirty = tx.dirty_youth(REFRESH_BATCH)?;
                for id in &dirty {
                    match summarise(tx, *id)? {
                        Some(summary) => tx.put_youth_summary(&summary)?,
                        None => tx.delete_youth_summary(*id)?,
                    }
                }
                Ok((docs.len(), dirty.len()))
            })?;
            projected += n;
            if n == 0 && summarised == 0 {
                return Ok(projected);
            }
        }
    }

    /// A page of visits to review, newest first.
    pub fn visits(
        &self,
        who: &Coordinator,
        query: &VisitQuery,
    ) -> Result<Paged<VisitItem>, HubError> {
        self.refresh_view()?;
        let page = query.page.max(1);
        let filter = VisitFilter {
            teams: who.scope(query.team),
            from: query.from,
            to: query.to,
            communes: query
                .commune
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(resolve_communes),
            state: query.state,
            offset: (page - 1) * PAGE_SIZE,
            limit: PAGE_SIZE,
        };
        self.hub().storage().read_with(|tx| -> Result<_, HubError> {
            let (rows, total) = tx.visits(&filter)?;
            let mut items = Vec::with_capacity(rows.len());
            for (view, review) in rows {
                let Some(contact) = decode::<Contact>(&view) else {
                    continue;
                };
                let mut youth = Vec::new();
                for id in &contact.youth_ids {
                    if let Some(y) = scoped_view(tx, who, RecordKind::Youth, *id)?
                        .and_then(|v| decode::<Youth>(&v))
                    {
                        youth.push((*id, y.display_name()));
                    }
                }
                let tasks = tasks_of(tx, who, view.id)?;
                items.push(VisitItem {
                    id: view.id,
                    team_id: view.team_id,
                    state: state_of(review.as_ref()),
                    open_questions: tasks
                        .iter()
                        .filter(|(_, t)| t.status == ReviewTaskStatus::Open)
                        .count(),
                    answered_questions: tasks
                        .iter()
                        .filter(|(_, t)| t.status == ReviewTaskStatus::Answered)
                        .count(),
                    contact,
                    youth,
                });
            }
            Ok(Paged::new(items, total, page))
        })
    }

    /// A visit with everything the review needs; `None` when unknown or out of scope.
    /// Looking at it is audited.
    pub fn visit(&self, who: &Coordinator, id: Uuid) -> Result<Option<VisitDetail>, HubError> {
        self.refresh_view()?;
        let today = self.today();
        let detail = self
            .hub()
            .storage()
            .read_with(|tx| -> Result<_, HubError> {
                let Some(stored) = scoped_document(tx, who, RecordKind::Contact, id)? else {
                    return Ok(None);
                };
                let mut doc = RecordDoc::load(stored.kind, stored.id, &stored.doc, reader())
                    .map_err(|e| HubError::Internal(format!("stored contact unreadable: {e}")))?;
                let contact: Contact = doc
                    .read()
                    .map_err(|e| HubError::Internal(format!("stored contact unreadable: {e}")))?;
                let Some(team) = who.team(stored.team_id).cloned() else {
                    return Ok(None);
                };
                let mut youth = Vec::new();
                for youth_id in &contact.youth_ids {
                    if let Some(y) = scoped_view(tx, who, RecordKind::Youth, *youth_id)?
                        .and_then(|v| decode::<Youth>(&v))
                    {
                        youth.push(YouthCard {
                            id: *youth_id,
                            age: y.approximate_age(today),
                            youth: y,
                        });
                    }
                }
                let review = tx.visit_review(id)?;
                let (events, _) = tx.audit_entries(who.organisation.id, Some(id), 0, 100)?;
                let events = events
                    .into_iter()
                    .filter(|e| {
                        matches!(
                            e.action.as_str(),
                            audit::APPROVE_VISIT
                                | audit::ASK_QUESTION
                                | audit::FLAG_VISIT
                                | audit::CLOSE_QUESTION
                        )
                    })
                    .collect();
                let (users, tablets) = authors(tx, who, team.id)?;
                Ok(Some(VisitDetail {
                    id,
                    team,
                    received_at: stored.received_at,
                    youth,
                    history: doc.history(),
                    receipts: tx.change_log(id)?,
                    conflicts: doc.conflicts(),
                    tasks: tasks_of(tx, who, id)?,
                    state: state_of(review.as_ref()),
                    review,
                    events,
                    users,
                    tablets,
                    contact,
                }))
            })?;
        if detail.is_some() {
            self.record(Audit::by(who, audit::VIEW_VISIT, Some(id), ""))?;
        }
        Ok(detail)
    }

    /// Young people's files, most recently met first: a page of their summaries.
    pub fn youth_list(
        &self,
        who: &Coordinator,
        query: &YouthQuery,
    ) -> Result<Paged<YouthItem>, HubError> {
        self.refresh_view()?;
        let page = query.page.max(1);
        let filter = YouthFilter {
            teams: who.scope(query.team),
            status: query.status.map(|s| serde_id(&s)),
            words: query
                .search
                .as_deref()
                .map(|s| fold(s).split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            offset: (page - 1) * PAGE_SIZE,
            limit: PAGE_SIZE,
        };
        let (rows, total) = self
            .hub()
            .storage()
            .read_with(|tx| Ok::<_, HubError>(tx.youth_page(&filter)?))?;
        let items = rows
            .into_iter()
            .filter_map(|(summary, view)| {
                Some(YouthItem {
                    id: view.id,
                    team_id: view.team_id,
                    youth: decode::<Youth>(&view)?,
                    contacts: summary.visits as usize,
                    actions: summary.actions as usize,
                    outcomes: summary.outcomes as usize,
                    last_contact: summary.last_visit,
                })
            })
            .collect();
        Ok(Paged::new(items, total, page))
    }

    /// A young person's file; `None` when unknown or out of scope. Audited.
    pub fn youth(&self, who: &Coordinator, id: Uuid) -> Result<Option<YouthDetail>, HubError> {
        let detail = self.youth_detail(who, id)?;
        if detail.is_some() {
            self.record(Audit::by(who, audit::VIEW_YOUTH, Some(id), ""))?;
        }
        Ok(detail)
    }

    /// A young person's file as [`Workspace::youth`] reads it, without the journal line
    /// (the caller writes its own).
    pub(crate) fn youth_detail(
        &self,
        who: &Coordinator,
        id: Uuid,
    ) -> Result<Option<YouthDetail>, HubError> {
        self.refresh_view()?;
        let today = self.today();
        let detail = self
            .hub()
            .storage()
            .read_with(|tx| -> Result<_, HubError> {
                let Some(view) = scoped_view(tx, who, RecordKind::Youth, id)? else {
                    return Ok(None);
                };
                let Some(youth) = decode::<Youth>(&view) else {
                    return Ok(None);
                };
                let Some(team) = who.team(view.team_id).cloned() else {
                    return Ok(None);
                };
                let conflicts = conflicts_of(tx, id)?;
                let (users, mut tablets) = authors(tx, who, team.id)?;
                let mut contacts = Vec::new();
                for v in tx.view_contacts_of_youth(id)? {
                    if !who.in_scope(v.team_id) {
                        continue;
                    }
                    if let Some(c) = decode::<Contact>(&v) {
                        let state = state_of(tx.visit_review(v.id)?.as_ref());
                        contacts.push((v.id, c, state));
                    }
                }
                let mut actions: Vec<(Uuid, Action)> = tx
                    .view_by_ref(RecordKind::Action, id)?
                    .into_iter()
                    .filter(|v| who.in_scope(v.team_id))
                    .filter_map(|v| Some((v.id, decode::<Action>(&v)?)))
                    .collect();
                actions.sort_by_key(|(i, a)| (std::cmp::Reverse(a.start_date), *i));
                let mut outcomes: Vec<(Uuid, Outcome)> = tx
                    .view_by_ref(RecordKind::Outcome, id)?
                    .into_iter()
                    .filter(|v| who.in_scope(v.team_id))
                    .filter_map(|v| Some((v.id, decode::<Outcome>(&v)?)))
                    .collect();
                outcomes.sort_by_key(|(i, o)| (std::cmp::Reverse(o.date), *i));
                let mut record_conflicts = HashMap::new();
                let mut other_teams = Vec::new();
                let linked = actions
                    .iter()
                    .map(|(i, a)| (*i, a.team_id))
                    .chain(outcomes.iter().map(|(i, o)| (*i, o.team_id)));
                for (record, team_id) in linked {
                    let found = conflicts_of(tx, record)?;
                    if !found.is_empty() {
                        record_conflicts.insert(record, found);
                        if team_id != team.id && !other_teams.contains(&team_id) {
                            other_teams.push(team_id);
                        }
                    }
                }
                for team_id in other_teams {
                    tablets.extend(authors(tx, who, team_id)?.1);
                }
                Ok(Some(YouthDetail {
                    id,
                    team,
                    age: youth.approximate_age(today),
                    youth,
                    contacts,
                    actions,
                    outcomes,
                    conflicts,
                    record_conflicts,
                    users,
                    tablets,
                }))
            })?;
        Ok(detail)
    }
}
