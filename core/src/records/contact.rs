use std::collections::BTreeSet;

use chrono::{DateTime, FixedOffset, NaiveDate};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::data_map::{Category, Export, FieldData, KindData, Shown};
use super::validate::{NOTES_MAX, SHORT_TEXT_MAX, ValidationContext, check_opt_text, check_text};
use super::{FieldKind, Record, RecordKind, reach};
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

// A next step is open while none of its visit's young people was seen at a later visit
// (that visit carries the current next step). So only the visits at a young person's latest
// visit time can have an open next step, and a visit written or removed changes only those:
// each refresh below is a few look-ups in `contact_youth` (young person, time), however
// many visits the person has. The rows depend only on the visits stored, never on the order
// they were indexed in, so a rebuild gives the same rows.

/// The 16-byte ids of a visit's young people, as its `youth_ids` column holds them.
fn youth_of(youth_ids: &[u8]) -> impl Iterator<Item = &[u8]> {
    youth_ids.chunks_exact(16)
}

/// The young person's latest visit time (UTC, RFC 3339), if they have a visit.
fn latest_visit(conn: &Connection, youth_id: &[u8]) -> crate::error::Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT max(occurred_at) FROM contact_youth WHERE youth_id = ?1")?
        .query_row([youth_id], |r| r.get(0))?)
}

/// Whether the next step of a visit at `at` is open: no young person of it has a later visit.
fn next_step_open(conn: &Connection, youth_ids: &[u8], at: &str) -> crate::error::Result<bool> {
    for y in youth_of(youth_ids) {
        if latest_visit(conn, y)?.is_some_and(|latest| latest.as_str() > at) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The next steps of the young person's visits at `at` close (a later visit came).
fn close_next_steps_at(conn: &Connection, youth_id: &[u8], at: &str) -> crate::error::Result<()> {
    conn.prepare_cached(
        "UPDATE contact_index SET open_due = NULL
          WHERE occurred_at = ?2 AND open_due IS NOT NULL AND id IN (
                SELECT contact_id FROM contact_youth WHERE youth_id = ?1 AND occurred_at = ?2)",
    )?
    .execute(params![youth_id, at])?;
    Ok(())
}

/// After a visit was removed: the next steps at the young person's (new) latest visit time
/// may open again.
fn reopen_latest_next_steps(conn: &Connection, youth_id: &[u8]) -> crate::error::Result<()> {
    let Some(latest) = latest_visit(conn, youth_id)? else {
        return Ok(());
    };
    let steps: Vec<(Vec<u8>, Vec<u8>, String)> = conn
        .prepare_cached(
            "SELECT c.id, c.youth_ids, c.next_step_due
               FROM contact_youth v
               JOIN contact_index c ON c.occurred_at = v.occurred_at AND c.id = v.contact_id
              WHERE v.youth_id = ?1 AND v.occurred_at = ?2 AND c.next_step_due IS NOT NULL",
        )?
        .query_map(params![youth_id, latest], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut reopen = conn.prepare_cached(
        "UPDATE contact_index SET open_due = ?3 WHERE occurred_at = ?1 AND id = ?2",
    )?;
    for (id, youth_ids, due) in steps {
        let open = next_step_open(conn, &youth_ids, &latest)?;
        reopen.execute(params![latest, id, open.then_some(due)])?;
    }
    Ok(())
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

    const DATA_MAP: KindData = KindData {
        title: "Visite",
        about: "Une rencontre ou un échange entre le binôme et un ou plusieurs jeunes : quand, \
                où, comment, ce qui a été dit, les besoins notés et la suite convenue.",
        retention: "avec la fiche du jeune rencontré ; une visite de groupe perd chaque jeune \
                    effacé et part avec le dernier",
        fields: &[
            FieldData {
                field: "team_id",
                category: Category::TechnicalId,
                purpose: "Rattacher la visite à l'équipe : décide qui la voit.",
                pages: Shown::Partly("nom de l'équipe"),
                tablet: &["contact_index"],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "youth_ids",
                category: Category::TechnicalId,
                purpose: "Relier la visite au jeune rencontré, ou aux jeunes d'une rencontre de \
                          groupe.",
                pages: Shown::Partly("les noms des jeunes"),
                tablet: &["contact_youth", "contact_index", "youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some("nombre de visites et premier contact de chaque jeune"),
            },
            FieldData {
                field: "tour_id",
                category: Category::TechnicalId,
                purpose: "Relier la visite à la tournée où elle a eu lieu.",
                pages: Shown::No,
                tablet: &["contact_index"],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "member_ids",
                category: Category::Staff,
                purpose: "Savoir quels membres de l'équipe étaient présents.",
                pages: Shown::No,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "occurred_at",
                category: Category::Date,
                purpose: "Dater la visite (l'heure saisie sur la tablette) ; le premier contact \
                          et la période des indicateurs.",
                pages: Shown::Yes,
                tablet: &["contact_index", "contact_youth", "youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some(
                    "date du premier contact du jeune ; pseudonymisé : son mois (AAAA-MM)",
                ),
            },
            FieldData {
                field: "commune",
                category: Category::Location,
                purpose: "Le lieu de la visite ; la commune comptée pour un jeune sans commune \
                          de résidence.",
                pages: Shown::Yes,
                tablet: &["contact_index", "youth_index"],
                exports: &[Export::Pseudonymised, Export::Named, Export::Indicators],
                exported_as: Some(
                    "celle de la première visite, à défaut de commune de résidence ; \
                     pseudonymisé : généralisée comme la commune de résidence (moins de 5 jeunes)",
                ),
            },
            FieldData {
                field: "kind",
                category: Category::Activity,
                purpose: "Comment a eu lieu la rencontre (rue, domicile, téléphone, réseau \
                          social…).",
                pages: Shown::Yes,
                tablet: &["contact_index"],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "notes",
                category: Category::FreeText,
                purpose: "Ce qui a été dit, pour la suite de l'accompagnement : peut nommer des \
                          tiers ou révéler des données sensibles.",
                pages: Shown::Yes,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "needs",
                category: Category::Special,
                purpose: "Les besoins notés (logement, santé, mobilité, emploi, formation, \
                          droits) ; le besoin « santé » est une donnée de santé.",
                pages: Shown::Yes,
                tablet: &[],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "next_step",
                category: Category::FreeText,
                purpose: "La prochaine étape convenue avec le jeune ; la liste « à faire » quand \
                          elle a une échéance.",
                pages: Shown::Yes,
                tablet: &["contact_index"],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "next_step_due",
                category: Category::Date,
                purpose: "L'échéance de la prochaine étape ; la liste « à faire » (échues et \
                          en retard).",
                pages: Shown::Yes,
                tablet: &["contact_index"],
                exports: &[],
                exported_as: None,
            },
        ],
    };

    const DERIVED: &'static [(&'static str, &'static str)] =
        &[("contact_index", "id"), ("contact_youth", "contact_id")];

    fn write_derived(&self, conn: &Connection, bid: &[u8]) -> crate::error::Result<()> {
        let at = self
            .occurred_at
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        // The indicators' day is the one entered, and ties go by the exact instant.
        let local_day = self.occurred_at.date_naive().to_string();
        let youth_ids: Vec<u8> = self.youth_ids.iter().flat_map(|y| *y.as_bytes()).collect();
        let step = match (&self.next_step, self.next_step_due) {
            (Some(step), Some(due)) => Some((step, due.to_string())),
            _ => None,
        };
        // This visit closes its young people's earlier latest next steps, and its own is
        // closed already if one of them has a later visit.
        let mut open = step.is_some();
        for y in youth_of(&youth_ids) {
            match latest_visit(conn, y)? {
                Some(latest) if latest < at => close_next_steps_at(conn, y, &latest)?,
                Some(latest) if latest > at => open = false,
                _ => {}
            }
        }
        conn.prepare_cached(
            "INSERT INTO contact_index (id, team_id, occurred_at, commune, kind, tour_id,
                local_day, at_secs, at_nanos, youth_ids, next_step, next_step_due, open_due)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            bid,
            self.team_id.as_bytes().as_slice(),
            at,
            self.commune,
            enum_str(&self.kind),
            self.tour_id.as_ref().map(|t| t.as_bytes().to_vec()),
            local_day,
            self.occurred_at.timestamp(),
            self.occurred_at.timestamp_subsec_nanos(),
            youth_ids,
            step.as_ref().map(|(step, _)| step),
            step.as_ref().map(|(_, due)| due),
            step.as_ref().filter(|_| open).map(|(_, due)| due),
        ])?;
        let mut stmt = conn.prepare_cached(
            "INSERT INTO contact_youth (youth_id, occurred_at, contact_id) VALUES (?1, ?2, ?3)",
        )?;
        let first = reach::Visit {
            day: &local_day,
            secs: self.occurred_at.timestamp(),
            nanos: self.occurred_at.timestamp_subsec_nanos(),
            id: bid,
            commune: &self.commune,
        };
        for y in youth_of(&youth_ids) {
            stmt.execute(params![y, at, bid])?;
            reach::visit_added(conn, y, &first)?;
        }
        // The row's key from the visit's id (see `remove_derived`).
        conn.prepare_cached("UPDATE documents SET derived_key = ?2 WHERE id = ?1")?
            .execute(params![bid, at])?;
        Ok(())
    }

    /// The visit's rows are found by the time its document keeps from when they were
    /// written (the document may hold another time by now). The young people's other next
    /// steps may open again once this visit is gone.
    fn remove_derived(conn: &Connection, bid: &[u8]) -> crate::error::Result<()> {
        let Some((youth_ids, at)): Option<(Vec<u8>, String)> = conn
            .prepare_cached(
                "SELECT c.youth_ids, c.occurred_at
                   FROM documents d JOIN contact_index c ON c.occurred_at = d.derived_key AND c.id = d.id
                  WHERE d.id = ?1",
            )?
            .query_row([bid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
        else {
            return Ok(());
        };
        conn.prepare_cached("DELETE FROM contact_index WHERE occurred_at = ?1 AND id = ?2")?
            .execute(params![at, bid])?;
        let mut stmt = conn.prepare_cached(
            "DELETE FROM contact_youth WHERE youth_id = ?1 AND occurred_at = ?2 AND contact_id = ?3",
        )?;
        for y in youth_of(&youth_ids) {
            stmt.execute(params![y, at, bid])?;
        }
        for y in youth_of(&youth_ids) {
            reopen_latest_next_steps(conn, y)?;
            reach::visits_changed(conn, y)?;
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
