use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset, NaiveDate};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::validate::{NOTES_MAX, SHORT_TEXT_MAX, ValidationContext, check_opt_text, check_text};
use super::{FieldKind, Record, RecordKind};
use crate::error::{Problem, ValidationErrors};
use crate::index::enum_str;

/// A group visit (a class, a club) meets at most this many young people.
pub const YOUTH_PER_CONTACT_MAX: usize = 40;
/// Members of the team present at one visit.
pub const MEMBERS_PER_CONTACT_MAX: usize = 10;

/// How the meeting happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Street,
    Home,
    TownHall,
    PartnerPremises,
    Event,
    Phone,
    SocialNetwork,
    Other,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

/// Needs noted during a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    Housing,
    Health,
    Mobility,
    Employment,
    Training,
    Rights,
    Other,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

/// One meeting or exchange between the binôme and one or more young people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub team_id: Uuid,
    /// Several for a group meeting.
    pub youth_ids: BTreeSet<Uuid>,
    #[serde(default)]
    pub tour_id: Option<Uuid>,
    /// The team members who were there.
    pub member_ids: BTreeSet<Uuid>,
    /// As entered on the device, with its UTC offset.
    pub occurred_at: DateTime<FixedOffset>,
    pub commune: String,
    pub kind: ContactKind,
    /// Free text; merges character by character under concurrent edits.
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub needs: BTreeSet<Need>,
    #[serde(default)]
    pub next_step: Option<String>,
    #[serde(default)]
    pub next_step_due: Option<NaiveDate>,
}

impl Record for Contact {
    const KIND: RecordKind = RecordKind::Contact;
    const SCHEMA: &'static [(&'static str, FieldKind)] = &[
        ("team_id", FieldKind::Scalar),
        ("youth_ids", FieldKind::Set),
        ("tour_id", FieldKind::Scalar),
        ("member_ids", FieldKind::Set),
        ("occurred_at", FieldKind::Scalar),
        ("commune", FieldKind::Scalar),
        ("kind", FieldKind::Scalar),
        ("notes", FieldKind::Text),
        ("needs", FieldKind::Set),
        ("next_step", FieldKind::Scalar),
        ("next_step_due", FieldKind::Scalar),
    ];

    const DERIVED: &'static [(&'static str, &'static str)] =
        &[("contact_index", "id"), ("contact_youth", "contact_id")];

    fn write_derived(&self, conn: &Connection, bid: &[u8]) -> crate::error::Result<()> {
        let at = self
            .occurred_at
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        conn.prepare_cached(
            "INSERT INTO contact_index (id, team_id, occurred_at, commune, kind, tour_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            bid,
            self.team_id.as_bytes().as_slice(),
            at,
            self.commune,
            enum_str(&self.kind),
            self.tour_id.as_ref().map(|t| t.as_bytes().to_vec()),
        ])?;
        let mut stmt = conn
            .prepare_cached("INSERT INTO contact_youth (contact_id, youth_id) VALUES (?1, ?2)")?;
        for y in &self.youth_ids {
            stmt.execute(params![bid, y.as_bytes().as_slice()])?;
        }
        Ok(())
    }

    fn team_id(&self) -> Uuid {
        self.team_id
    }

    fn validate(&self, ctx: &ValidationContext<'_>) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        if self.youth_ids.is_empty() {
            errs.push("youth_ids", Problem::Required);
        } else if self.youth_ids.len() > YOUTH_PER_CONTACT_MAX {
            errs.push(
                "youth_ids",
                Problem::TooMany {
                    max: YOUTH_PER_CONTACT_MAX,
                },
            );
        }
        if self.member_ids.is_empty() {
            errs.push("member_ids", Problem::Required);
        } else if self.member_ids.len() > MEMBERS_PER_CONTACT_MAX {
            errs.push(
                "member_ids",
                Problem::TooMany {
                    max: MEMBERS_PER_CONTACT_MAX,
                },
            );
        }
        ctx.check_past_instant(&mut errs, "occurred_at", &self.occurred_at);
        ctx.check_commune(&mut errs, "commune", &self.commune);
        check_text(&mut errs, "notes", &self.notes, NOTES_MAX, false);
        check_opt_text(&mut errs, "next_step", &self.next_step, SHORT_TEXT_MAX);
        if let Some(due) = self.next_step_due {
            if self.next_step.is_none() {
                errs.push("next_step", Problem::Required);
            }
            if due < self.occurred_at.date_naive() {
                errs.push("next_step_due", Problem::EndBeforeStart);
            }
        }
        errs.into_result()
    }
}
