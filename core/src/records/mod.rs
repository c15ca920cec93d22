//! The domain records. Each is a plain typed struct with validation; its Automerge
//! representation is described by a field schema (see `crate::document`).

mod action;
mod contact;
pub mod data_map;
mod reach;
mod review;
mod tour;
mod validate;
mod youth;

use std::fmt;

use rusqlite::Connection;
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

/// Declares every record kind once: its Rust type, its stored name and its wire code.
/// Everything that dispatches on a kind (schemas, reading, validation, scope) is generated
/// from this table, so a new kind is one line here plus its module.
macro_rules! record_kinds {
    ($($variant:ident($ty:ty) = $code:literal, $name:literal;)+) => {
        /// The kinds of record, each stored as its own Automerge document.
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum RecordKind {
            $($variant,)+
        }

        impl RecordKind {
            pub const ALL: &'static [RecordKind] = &[$(RecordKind::$variant,)+];

            /// The name stored on the device and the server, and inside each document.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(RecordKind::$variant => $name,)+
                }
            }

            /// The number that stands for the kind on the wire. Pinned: never reuse one.
            pub fn wire_code(self) -> u32 {
                match self {
                    $(RecordKind::$variant => $code,)+
                }
            }

            /// `None` for a kind from a newer app version.
            pub fn from_wire(code: u32) -> Option<Self> {
                match code {
                    $($code => Some(RecordKind::$variant),)+
                    _ => None,
                }
            }

            pub fn schema(self) -> &'static [(&'static str, FieldKind)] {
                match self {
                    $(RecordKind::$variant => <$ty as Record>::SCHEMA,)+
                }
            }

            /// The data-protection facts of the kind's fields (`data_map`).
            pub fn data_map(self) -> data_map::KindData {
                match self {
                    $(RecordKind::$variant => <$ty as Record>::DATA_MAP,)+
                }
            }

            /// The derived tables the kind writes: the data map must name them.
            #[cfg(test)]
            fn derived(self) -> &'static [(&'static str, &'static str)] {
                match self {
                    $(RecordKind::$variant => <$ty as Record>::DERIVED,)+
                }
            }
        }

        /// Any record, for APIs that handle several kinds at once (sync, indexing).
        #[derive(Debug, Clone, PartialEq)]
        pub enum AnyRecord {
            $($variant($ty),)+
        }

        impl AnyRecord {
            pub fn kind(&self) -> RecordKind {
                match self {
                    $(AnyRecord::$variant(_) => RecordKind::$variant,)+
                }
            }

            pub fn team_id(&self) -> Uuid {
                match self {
                    $(AnyRecord::$variant(r) => r.team_id(),)+
                }
            }

            pub fn validate(&self, ctx: &ValidationContext<'_>) -> Result<(), ValidationErrors> {
                match self {
                    $(AnyRecord::$variant(r) => r.validate(ctx),)+
                }
            }

            pub fn write_derived(&self, conn: &Connection, id: &[u8]) -> crate::error::Result<()> {
                match self {
                    $(AnyRecord::$variant(r) => r.write_derived(conn, id),)+
                }
            }

            /// Removes a record's derived rows, whatever its kind (it may be gone).
            pub fn remove_derived(conn: &Connection, id: &[u8]) -> crate::error::Result<()> {
                $(<$ty as Record>::remove_derived(conn, id)?;)+
                Ok(())
            }

            /// Empties every derived table (before a rebuild).
            pub fn clear_derived(conn: &Connection) -> crate::error::Result<()> {
                $(<$ty as Record>::clear_derived(conn)?;)+
                Ok(())
            }

            /// The record's fields as JSON named by the schema.
            pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
                match self {
                    $(AnyRecord::$variant(r) => serde_json::to_value(r),)+
                }
            }

            /// Reads a record of `kind` from its fields (JSON named by the schema).
            pub fn from_fields(
                kind: RecordKind,
                fields: serde_json::Map<String, serde_json::Value>,
            ) -> Result<AnyRecord, serde_json::Error> {
                let v = serde_json::Value::Object(fields);
                Ok(match kind {
                    $(RecordKind::$variant => AnyRecord::$variant(serde_json::from_value(v)?),)+
                })
            }
        }

        $(impl From<$ty> for AnyRecord {
            fn from(r: $ty) -> AnyRecord {
                AnyRecord::$variant(r)
            }
        })+
    };
}

record_kinds! {
    Youth(Youth) = 0, "youth";
    Contact(Contact) = 1, "contact";
    Tour(Tour) = 2, "tour";
    Action(Action) = 3, "action";
    Outcome(Outcome) = 4, "outcome";
    ReviewTask(ReviewTask) = 5, "review_task";
}

impl RecordKind {
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Kinds that other records refer to (a visit names young people and a tour; actions
    /// and outcomes a young person) rank first: pushed and stored before the records that
    /// name them, the server never sees a reference to a record still on its way.
    pub fn push_rank(self) -> u8 {
        match self {
            RecordKind::Youth | RecordKind::Tour => 0,
            RecordKind::Contact | RecordKind::Action | RecordKind::Outcome => 1,
            RecordKind::ReviewTask => 2,
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record type that can live in the store.
pub trait Record: Serialize + DeserializeOwned + Clone + fmt::Debug + Into<AnyRecord> {
    const KIND: RecordKind;
    /// Every serialized field with how it merges; serde names and this list must agree
    /// (checked by a test).
    const SCHEMA: &'static [(&'static str, FieldKind)];

    /// The DPIA facts of every SCHEMA field, in SCHEMA order (checked by the `data_map`
    /// tests), and of the kind: docs/DATA-MAP.md is generated from them.
    const DATA_MAP: data_map::KindData;

    /// The team whose caseload the record belongs to (its sync scope).
    fn team_id(&self) -> Uuid;

    fn validate(&self, ctx: &ValidationContext<'_>) -> Result<(), ValidationErrors>;

    /// The derived tables this kind writes, each with the column naming the record: its
    /// rows go when the record is re-indexed, erased or the index rebuilt.
    const DERIVED: &'static [(&'static str, &'static str)];

    /// Writes the record's rows in the derived tables (lists, search, indicators).
    fn write_derived(&self, conn: &Connection, id: &[u8]) -> crate::error::Result<()>;

    fn remove_derived(conn: &Connection, id: &[u8]) -> crate::error::Result<()> {
        for (table, column) in Self::DERIVED {
            conn.prepare_cached(&format!("DELETE FROM {table} WHERE {column} = ?1"))?
                .execute([id])?;
        }
        Ok(())
    }

    fn clear_derived(conn: &Connection) -> crate::error::Result<()> {
        for (table, _) in Self::DERIVED {
            conn.execute(&format!("DELETE FROM {table}"), [])?;
        }
        Ok(())
    }

    fn into_any(self) -> AnyRecord {
        self.into()
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

    /// Documents store fields under their schema position (document.rs), merged by their
    /// merge kind: renaming is fine, but reordering, removing or re-kinding a field would
    /// misread every stored document. Letters: s scalar, S set, L list, T text.
    #[test]
    fn schema_positions_and_merge_kinds_are_pinned() {
        let pinned: [(RecordKind, &str); 6] = [
            (
                RecordKind::Youth,
                "team_id:s identity_level:s alias:s first_name:s last_name:s birth_date:s birth_year:s age_band:s sex:s phone:s email:s other_contact:s home_commune:s referral_source:s referral_detail:s referral_date:s profile_flags:S situation:s followed_by:s first_contact_date:s notice_given_on:s status:s",
            ),
            (
                RecordKind::Contact,
                "team_id:s youth_ids:S tour_id:s member_ids:S occurred_at:s commune:s kind:s notes:T needs:S next_step:s next_step_due:s",
            ),
            (RecordKind::Tour, "team_id:s date:s communes:L status:s"),
            (
                RecordKind::Action,
                "team_id:s youth_id:s kind:s start_date:s end_date:s status:s detail:s",
            ),
            (
                RecordKind::Outcome,
                "team_id:s youth_id:s kind:s date:s organisation:s",
            ),
            (
                RecordKind::ReviewTask,
                "team_id:s contact_id:s question:s asked_by:s asked_at:s answer:T answered_by:s answered_at:s status:s",
            ),
        ];
        for (kind, fields) in pinned {
            let schema: Vec<String> = kind
                .schema()
                .iter()
                .map(|(n, k)| {
                    let letter = match k {
                        FieldKind::Scalar => "s",
                        FieldKind::Set => "S",
                        FieldKind::List => "L",
                        FieldKind::Text => "T",
                    };
                    format!("{n}:{letter}")
                })
                .collect();
            let pinned: Vec<&str> = fields.split(' ').collect();
            assert!(schema.len() <= 52);
            assert_eq!(
                &schema[..pinned.len()],
                pinned.as_slice(),
                "{kind}: fields may only be appended, each with its merge kind for good"
            );
        }
    }

    #[test]
    fn wire_codes_are_pinned() {
        let names: Vec<(u32, &str)> = RecordKind::ALL
            .iter()
            .map(|k| (k.wire_code(), k.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                (0, "youth"),
                (1, "contact"),
                (2, "tour"),
                (3, "action"),
                (4, "outcome"),
                (5, "review_task")
            ]
        );
        assert_eq!(RecordKind::from_wire(6), None);
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
