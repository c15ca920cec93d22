//! The domain records. Each is a plain typed struct with validation; its Automerge
//! representation is described by a field schema (see `crate::document`).

mod action;
mod contact;
mod review;
mod tour;
mod validate;
mod youth;

use std::fmt;

use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

pub use action::{Action, ActionKind, ActionStatus, Outcome, OutcomeKind};
pub use contact::{Contact, ContactKind, Need};
pub use review::{ReviewTask, ReviewTaskStatus};
pub use tour::{Tour, TourStatus};
pub use validate::ValidationContext;
pub use youth::age_on as youth_age_on;
pub use youth::{
    AgeBand, IdentityLevel, ProfileFlag, ReferralSource, Service, Sex, Situation, Youth,
    YouthStatus,
};

use crate::error::ValidationErrors;

/// How a field is held in its Automerge document, which decides how concurrent edits merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// One value; concurrent writes become a visible conflict.
    Scalar,
    /// An unordered set of strings; concurrent additions all survive.
    Set,
    /// An ordered list of strings (e.g. a tour's communes).
    List,
    /// Free text that merges character by character.
    Text,
}

/// The kinds of record, each stored as its own Automerge document.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Youth,
    Contact,
    Tour,
    Action,
    Outcome,
    ReviewTask,
}

impl RecordKind {
    pub const ALL: [RecordKind; 6] = [
        RecordKind::Youth,
        RecordKind::Contact,
        RecordKind::Tour,
        RecordKind::Action,
        RecordKind::Outcome,
        RecordKind::ReviewTask,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Youth => "youth",
            RecordKind::Contact => "contact",
            RecordKind::Tour => "tour",
            RecordKind::Action => "action",
            RecordKind::Outcome => "outcome",
            RecordKind::ReviewTask => "review_task",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn schema(self) -> &'static [(&'static str, FieldKind)] {
        match self {
            RecordKind::Youth => Youth::SCHEMA,
            RecordKind::Contact => Contact::SCHEMA,
            RecordKind::Tour => Tour::SCHEMA,
            RecordKind::Action => Action::SCHEMA,
            RecordKind::Outcome => Outcome::SCHEMA,
            RecordKind::ReviewTask => ReviewTask::SCHEMA,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record type that can live in the store.
pub trait Record: Serialize + DeserializeOwned + Clone + fmt::Debug {
    const KIND: RecordKind;
    /// Every serialized field with how it merges; serde names and this list must agree
    /// (checked by a test).
    const SCHEMA: &'static [(&'static str, FieldKind)];

    /// The team whose caseload the record belongs to (its sync scope).
    fn team_id(&self) -> Uuid;

    fn validate(&self, ctx: &ValidationContext<'_>) -> Result<(), ValidationErrors>;

    fn into_any(self) -> AnyRecord;
}

/// Any record, for APIs that handle several kinds at once (sync, indexing).
#[derive(Debug, Clone, PartialEq)]
pub enum AnyRecord {
    Youth(Youth),
    Contact(Contact),
    Tour(Tour),
    Action(Action),
    Outcome(Outcome),
    ReviewTask(ReviewTask),
}

impl AnyRecord {
    pub fn kind(&self) -> RecordKind {
        match self {
            AnyRecord::Youth(_) => RecordKind::Youth,
            AnyRecord::Contact(_) => RecordKind::Contact,
            AnyRecord::Tour(_) => RecordKind::Tour,
            AnyRecord::Action(_) => RecordKind::Action,
            AnyRecord::Outcome(_) => RecordKind::Outcome,
            AnyRecord::ReviewTask(_) => RecordKind::ReviewTask,
        }
    }

    pub fn team_id(&self) -> Uuid {
        match self {
            AnyRecord::Youth(r) => r.team_id(),
            AnyRecord::Contact(r) => r.team_id(),
            AnyRecord::Tour(r) => r.team_id(),
            AnyRecord::Action(r) => r.team_id(),
            AnyRecord::Outcome(r) => r.team_id(),
            AnyRecord::ReviewTask(r) => r.team_id(),
        }
    }

    pub fn validate(&self, ctx: &ValidationContext<'_>) -> Result<(), ValidationErrors> {
        match self {
            AnyRecord::Youth(r) => r.validate(ctx),
            AnyRecord::Contact(r) => r.validate(ctx),
            AnyRecord::Tour(r) => r.validate(ctx),
            AnyRecord::Action(r) => r.validate(ctx),
            AnyRecord::Outcome(r) => r.validate(ctx),
            AnyRecord::ReviewTask(r) => r.validate(ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::to_json_fields;

    fn assert_schema_matches<R: Record>(sample: &R) {
        let fields = to_json_fields(sample).expect("serializes");
        let schema: Vec<&str> = R::SCHEMA.iter().map(|(n, _)| *n).collect();
        for key in fields.keys() {
            assert!(schema.contains(&key.as_str()), "{} not in schema", key);
        }
        for name in schema {
            assert!(fields.contains_key(name), "{name} not serialized");
        }
    }

    /// Documents store fields under their schema position (document.rs): renaming is fine,
    /// but reordering or removing a field would misread every stored document.
    #[test]
    fn schema_positions_are_pinned() {
        let pinned: [(RecordKind, &str); 6] = [
            (
                RecordKind::Youth,
                "team_id identity_level alias first_name last_name birth_date birth_year age_band sex phone email other_contact home_commune referral_source referral_detail referral_date profile_flags situation followed_by first_contact_date notice_given_on status",
            ),
            (
                RecordKind::Contact,
                "team_id youth_ids tour_id member_ids occurred_at commune kind notes needs next_step next_step_due",
            ),
            (RecordKind::Tour, "team_id date communes status"),
            (
                RecordKind::Action,
                "team_id youth_id kind start_date end_date status detail",
            ),
            (
                RecordKind::Outcome,
                "team_id youth_id kind date organisation",
            ),
            (
                RecordKind::ReviewTask,
                "team_id contact_id question asked_by asked_at answer answered_by answered_at status",
            ),
        ];
        for (kind, names) in pinned {
            let schema: Vec<&str> = kind.schema().iter().map(|(n, _)| *n).collect();
            let pinned: Vec<&str> = names.split(' ').collect();
            assert!(schema.len() <= 52);
            assert_eq!(
                &schema[..pinned.len()],
                pinned.as_slice(),
                "{kind}: fields may only be appended"
            );
        }
    }

    #[test]
    fn schemas_match_serde_names() {
        let mut d =
            crate::demo::DemoData::new(1, Uuid::now_v7(), [Uuid::now_v7(); 2], chrono::Utc::now());
        assert_schema_matches(&d.youth());
        assert_schema_matches(&d.contact(&[Uuid::now_v7()]));
        assert_schema_matches(&d.tour());
        assert_schema_matches(&d.action(Uuid::now_v7()));
        assert_schema_matches(&d.outcome(Uuid::now_v7()));
    }
}
