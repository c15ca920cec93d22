//! Retention (issue 10, point 6): a young person's file is kept for a number of months
//! after the last contact — the CNIL default of the référentiel « accompagnement social »
//! is 24, an organisation may set its own — and then erased with everything that goes
//! with it (the erasure's cascade: visits, actions, outcomes, questions). Tours are kept as
//! long after their own date. The server applies the rules by itself every day; coordinators
//! see 30 days ahead what is due, so that a new contact can keep a file that is still
//! followed; `admin purge --dry-run` prints the same list.

use std::collections::HashMap;

use chrono::{Months, NaiveDate};
use repere_core::records::{Action, Contact, Outcome, Tour, Youth};
use repere_core::{AnyRecord, RecordKind};
use uuid::Uuid;

use crate::hub::{ErasureReason, Hub, HubError};

/// The référentiel « accompagnement social » of the CNIL: two years in the active base
/// after the last contact.
pub const CNIL_DEFAULT_MONTHS: u32 = 24;
/// How far ahead coordinators are shown what will be purged.
pub const NOTICE_DAYS: i64 = 30;
/// The longest rule an organisation may set (10 years).
pub const MAX_MONTHS: u32 = 120;

/// A record the rules will purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub kind: RecordKind,
    pub id: Uuid,
    pub team_id: Uuid,
    /// The day the time counts from: a young person's last contact (first contact, visits,
    /// actions, outcomes), a tour's own day.
    pub last_contact: NaiveDate,
    pub purge_on: NaiveDate,
}

impl Hub {
    /// The organisation's rule in months (the CNIL default if it set none).
    pub fn retention_months(&self, organisation_id: Uuid) -> Result<u32, HubError> {
        Ok(self
            .storage()
            .read_with(|tx| tx.retention_months(organisation_id))?
            .unwrap_or(CNIL_DEFAULT_MONTHS))
    }

    pub fn set_retention_months(&self, organisation_id: Uuid, months: u32) -> Result<(), HubError> {
        if !(1..=MAX_MONTHS).contains(&months) {
            return Err(HubError::BadInput(format!(
                "a retention rule is 1 to {MAX_MONTHS} months"
            )));
        }
        let now = self.now();
        self.storage()
            .write_with(|tx| tx.set_retention_months(organisation_id, months, now))?;
        tracing::info!(organisation = %organisation_id, months, "retention rule set");
        Ok(())
    }

    /// What the rules purge on or before `as_of + within_days`, soonest first. Young people
    /// come with the day their file is purged; their visits, actions and outcomes go with
    /// them and are not listed.
    pub fn retention_plan(&self, as_of: NaiveDate, within_days: i64) -> Result<Vec<Due>, HubError> {
        let horizon = as_of + chrono::Duration::days(within_days.max(0));
        let (records, months) = self.storage().read_with(|tx| -> Result<_, HubError> {
            let records = tx.record_fields(&[
                RecordKind::Youth,
                RecordKind::Contact,
                RecordKind::Action,
                RecordKind::Outcome,
                RecordKind::Tour,
            ])?;
            let mut by_organisation: HashMap<Uuid, u32> = HashMap::new();
            for organisation in tx.organisations()? {
                let rule = tx.retention_months(organisation.id)?;
                by_organisation.insert(organisation.id, rule.unwrap_or(CNIL_DEFAULT_MONTHS));
            }
            let mut months: HashMap<Uuid, u32> = HashMap::new();
            for team in tx.teams()? {
                let rule = by_organisation.get(&team.organisation_id).copied();
                months.insert(team.id, rule.unwrap_or(CNIL_DEFAULT_MONTHS));
            }
            Ok((records, months))
        })?;
        let mut youth: HashMap<Uuid, (Uuid, NaiveDate)> = HashMap::new();
        let mut others = Vec::new();
        let mut seen: Vec<(Uuid, NaiveDate)> = Vec::new();
        for r in &records {
            let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(&r.fields) else {
                tracing::warn!(record = %r.id, "record fields unreadable: left out of the retention rules");
                continue;
            };
            let Ok(record) = AnyRecord::from_fields(r.kind, fields) else {
                tracing::warn!(record = %r.id, "record fields unreadable: left out of the retention rules");
                continue;
            };
            match record {
                AnyRecord::Youth(Youth {
                    first_contact_date, ..
                }) => {
                    youth.insert(r.id, (r.team_id, first_contact_date));
                }
                // A visit names at least one young person: it goes with them.
                AnyRecord::Contact(Contact {
                    youth_ids,
                    occurred_at,
                    ..
                }) => seen.extend(youth_ids.into_iter().map(|y| (y, occurred_at.date_naive()))),
                AnyRecord::Action(Action {
                    youth_id,
                    start_date,
                    end_date,
                    ..
                }) => seen.push((youth_id, end_date.unwrap_or(start_date).max(start_date))),
                AnyRecord::Outcome(Outcome { youth_id, date, .. }) => seen.push((youth_id, date)),
                AnyRecord::Tour(Tour { date, .. }) => {
                    others.push((RecordKind::Tour, r.id, r.team_id, date));
                }
                AnyRecord::ReviewTask(_) => {}
            }
        }
        for (youth_id, day) in seen {
            if let Some((_, last)) = youth.get_mut(&youth_id) {
                *last = (*last).max(day);
            }
        }
        let purge_on = |team: Uuid, last: NaiveDate| {
            let rule = months.get(&team).copied().unwrap_or(CNIL_DEFAULT_MONTHS);
            last.checked_add_months(Months::new(rule))
                .unwrap_or(NaiveDate::MAX)
        };
        let mut due: Vec<Due> = youth
            .into_iter()
            .map(|(id, (team_id, last))| (RecordKind::Youth, id, team_id, last))
            .chain(others)
            .map(|(kind, id, team_id, last_contact)| Due {
                kind,
                id,
                team_id,
                last_contact,
                purge_on: purge_on(team_id, last_contact),
            })
            .filter(|d| d.purge_on <= horizon)
            .collect();
        due.sort_by_key(|d| (d.purge_on, d.kind, d.id));
        Ok(due)
    }

    /// Erases everything the rules purge today (the daily job, and `admin purge`): each
    /// record in its own transaction with its own journal entry (« fin de la durée de
    /// conservation »). Returns what was erased.
    pub fn apply_retention(&self) -> Result<Vec<Due>, HubError> {
        let today = crate::coord::paris(self.now()).date_naive();
        let due = self.retention_plan(today, 0)?;
        let mut done = Vec::new();
        for d in due {
            // A young person's cascade may already have taken a visit listed after them.
            let present = self.storage().read_with(|tx| tx.document(d.id))?.is_some();
            if present {
                self.erase_because(d.id, ErasureReason::EndOfRetention)?;
                done.push(d);
            }
        }
        if !done.is_empty() {
            tracing::info!(records = done.len(), "retention rules applied");
        }
        Ok(done)
    }
}
