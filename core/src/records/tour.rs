use chrono::NaiveDate;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::data_map::{Category, FieldData, KindData, Shown};
use super::validate::ValidationContext;
use super::{FieldKind, Record, RecordKind};
use crate::error::{Problem, ValidationErrors};
use crate::index::enum_str;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TourStatus {
    Planned,
    InProgress,
    Done,
    Cancelled,
    /// Set by a newer app version: shown as « valeur d'une version plus récente »,
    /// kept byte for byte, never written by this version.
    #[serde(rename = "_unknown", other)]
    FromNewerVersion,
}

/// A planned day's route ("tournée"): the communes in the order they will be crossed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tour {
    pub team_id: Uuid,
    pub date: NaiveDate,
    #[serde(default)]
    pub communes: Vec<String>,
    pub status: TourStatus,
}

/// The longest route a team can drive in a day, with margin.
const MAX_COMMUNES: usize = 60;

impl Record for Tour {
    const KIND: RecordKind = RecordKind::Tour;
    const SCHEMA: &'static [(&'static str, FieldKind)] = &[
        ("team_id", FieldKind::Scalar),
        ("date", FieldKind::Scalar),
        ("communes", FieldKind::List),
        ("status", FieldKind::Scalar),
    ];

    const DATA_MAP: KindData = KindData {
        title: "Tournée",
        about: "La journée de route prévue d'une équipe : sa date et les communes à traverser. \
                Elle ne contient aucune donnée sur les jeunes ; les visites faites en tournée y \
                renvoient.",
        retention: "la durée de l'organisation après la date de la tournée (2 ans par défaut), \
                    puis effacement",
        fields: &[
            FieldData {
                field: "team_id",
                category: Category::TechnicalId,
                purpose: "Rattacher la tournée à l'équipe : décide qui la voit.",
                pages: Shown::No,
                tablet: &["tour_index"],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "date",
                category: Category::Date,
                purpose: "Le jour de la tournée.",
                pages: Shown::No,
                tablet: &["tour_index"],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "communes",
                category: Category::Location,
                purpose: "Les communes à traverser, dans l'ordre.",
                pages: Shown::No,
                tablet: &["tour_index"],
                exports: &[],
                exported_as: None,
            },
            FieldData {
                field: "status",
                category: Category::Activity,
                purpose: "Prévue, en cours, faite ou annulée.",
                pages: Shown::No,
                tablet: &["tour_index"],
                exports: &[],
                exported_as: None,
            },
        ],
    };

    const DERIVED: &'static [(&'static str, &'static str)] = &[("tour_index", "id")];

    fn write_derived(&self, conn: &Connection, bid: &[u8]) -> crate::error::Result<()> {
        conn.prepare_cached(
            "INSERT INTO tour_index (id, team_id, date, status, communes)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            bid,
            self.team_id.as_bytes().as_slice(),
            self.date.to_string(),
            enum_str(&self.status),
            self.communes.join(","),
        ])?;
        Ok(())
    }

    fn team_id(&self) -> Uuid {
        self.team_id
    }

    fn validate(&self, ctx: &ValidationContext<'_>) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        // A tour is planned ahead, so only very old dates are mistakes.
        if self.date < super::validate::EARLIEST_DATE {
            errs.push("date", Problem::TooOld);
        }
        if self.date > ctx.today() + chrono::Duration::days(366) {
            errs.push("date", Problem::InFuture);
        }
        if self.communes.len() > MAX_COMMUNES {
            errs.push("communes", Problem::TooMany { max: MAX_COMMUNES });
        }
        if self.communes.iter().any(|c| ctx.communes.get(c).is_none()) {
            errs.push("communes", Problem::UnknownCommune);
        }
        errs.into_result()
    }
}
